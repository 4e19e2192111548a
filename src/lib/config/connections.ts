import { z } from 'zod';
import { SECRET_NAME } from '../store/limits.js';
import { parseDuration } from './duration.js';
import { endpointProblem } from './urls.js';

/** The public configuration contract of DESIGN.md ("Configuration"); `connections.schema.json` is generated from it. */

export const CONNECTION_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

const endpoint = z
  .string()
  .superRefine((value, ctx) => {
    const problem = endpointProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('https URL (plain http only for loopback hosts)');

const duration = z
  .string()
  .refine((v) => parseDuration(v) !== undefined, 'must be an ISO-8601 duration such as PT24H or P7D')
  .describe('ISO-8601 duration (weeks, days, hours, minutes, seconds)');

/**
 * Secret names the broker writes itself (`rt-{id}` grants, `broker-seal-key`, …): a connection naming
 * one as its client secret would read (or, via `broker secrets set`, overwrite) a grant. Key Vault
 * compares names case-insensitively, so the prefixes are too.
 */
const RESERVED_SECRET_PREFIXES = ['rt-', 'broker-'];
const RESERVED_SECRET_NAME_MESSAGE = 'names beginning rt- or broker- are reserved for the broker';

function notReservedSecretName(name: string): boolean {
  const lower = name.toLowerCase();
  return !RESERVED_SECRET_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

const credential = z
  .object({
    type: z.literal('secret'),
    secretName: z
      .string()
      .regex(SECRET_NAME, 'must be a Key Vault secret name (letters, digits, dashes)')
      .refine(notReservedSecretName, RESERVED_SECRET_NAME_MESSAGE)
      .describe('name of the secret in the store that holds the client secret'),
  })
  .strict()
  .describe('absent = public client');

const scopes = z.array(z.string().min(1).regex(/^\S+$/, 'must not contain spaces')).min(1);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A DNS name: dot-separated labels of letters, digits and inner dashes, at least two, ≤ 253 characters. */
const DNS_NAME =
  /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An Entra tenant: one of the three keywords, a tenant GUID, or a verified domain (a DNS name). */
const TENANT = new RegExp(`^(?:common|organizations|consumers)$|${GUID.source}|${DNS_NAME.source}`, 'i');

const callers = z
  .array(
    z
      .object({
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'must be a short name (letters, digits, space . _ -)')
          .describe('what logs and the status page call this caller'),
        objectId: z
          .string()
          .regex(GUID, 'must be the object id (GUID) of a service principal or managed identity')
          .describe("the caller's service principal object id: the `oid` of its tokens"),
      })
      .strict(),
  )
  .describe('with CALLER_AUTH=entra: who may get tokens of this connection; absent or empty = nobody');

const common = {
  clientId: z.string().min(1),
  credential: credential.optional(),
  scopes,
  expectedAccount: z
    .string()
    .min(1)
    .optional()
    .describe('consent by any other account is refused; compared case-insensitively, sent as login_hint'),
  redirectUri: endpoint.optional().describe('default: BROKER_PUBLIC_URL + /api/callback'),
  rotateAfter: duration.default('PT24H'),
  callers: callers.optional(),
  allowedScopes: z
    .array(z.string().min(1).regex(/^\S+$/, 'must not contain spaces'))
    .optional()
    .describe(
      'what /api/token?scope= may ask for besides `scopes` (case-insensitive); anything else is refused',
    ),
};

const flow = z.enum(['authorization_code', 'device_code']).default('authorization_code');

export const entraConnection = z
  .object({
    provider: z.literal('entra'),
    flow,
    authority: endpoint.default('https://login.microsoftonline.com'),
    tenant: z
      .string()
      .regex(TENANT, 'must be common, organizations, consumers, a tenant GUID or a domain')
      .default('common'),
    ...common,
  })
  .strict();

export const sharepointAcsConnection = z
  .object({
    provider: z.literal('sharepoint-acs'),
    siteUrl: endpoint.describe(
      'https URL of the SharePoint site the add-in was registered on (plain http only for loopback hosts)',
    ),
    accessControlUrl: endpoint.default('https://accounts.accesscontrol.windows.net'),
    ...common,
    credential: credential.describe("the add-in's client secret (appregnew.aspx); required"),
  })
  .strict();

export const oauth2Connection = z
  .object({
    provider: z.literal('oauth2'),
    flow,
    issuer: endpoint.optional().describe('OpenID/OAuth discovery; or the explicit endpoints below'),
    authorizationEndpoint: endpoint.optional(),
    tokenEndpoint: endpoint.optional(),
    deviceAuthorizationEndpoint: endpoint.optional(),
    tokenEndpointAuthMethod: z
      .enum(['client_secret_basic', 'client_secret_post'])
      .optional()
      .describe(
        'how the client secret is sent (RFC 6749 §2.3.1); default: per discovery, client_secret_basic when it names both or nothing',
      ),
    ...common,
  })
  .strict()
  .refine((c) => c.issuer !== undefined || c.tokenEndpoint !== undefined, {
    message: 'needs issuer (discovery) or tokenEndpoint',
    path: ['issuer'],
  })
  .refine((c) => c.issuer !== undefined || c.flow !== 'authorization_code' || c.authorizationEndpoint, {
    message: 'needs issuer (discovery) or authorizationEndpoint for the authorization code flow',
    path: ['authorizationEndpoint'],
  })
  .refine((c) => c.issuer !== undefined || c.flow !== 'device_code' || c.deviceAuthorizationEndpoint, {
    message: 'needs issuer (discovery) or deviceAuthorizationEndpoint for the device code flow',
    path: ['deviceAuthorizationEndpoint'],
  })
  .refine((c) => c.tokenEndpointAuthMethod === undefined || c.credential !== undefined, {
    message: 'applies only to a client with a credential (a public client sends no secret)',
    path: ['tokenEndpointAuthMethod'],
  });

export const connectionSchema = z.discriminatedUnion('provider', [
  entraConnection,
  sharepointAcsConnection,
  oauth2Connection,
]);

export const connectionsFileSchema = z
  .object({
    $schema: z.string().optional(),
    connections: z.record(
      z.string().regex(CONNECTION_ID, 'connection ids are lowercase letters, digits and dashes (max 63)'),
      connectionSchema,
    ),
  })
  .strict();

export type EntraConnectionConfig = z.output<typeof entraConnection>;
export type SharepointAcsConnectionConfig = z.output<typeof sharepointAcsConnection>;
export type OAuth2ConnectionConfig = z.output<typeof oauth2Connection>;
export type ConnectionConfig = z.output<typeof connectionSchema>;

/** A configured connection with its id and resolved defaults. */
export type Connection = ConnectionConfig & {
  id: string;
  redirectUri: string;
  rotateAfterMs: number;
};

import * as z from 'zod';
import { SECRET_NAME } from '../store/limits.js';
import { parseDuration } from './duration.js';
import { endpointProblem } from './urls.js';

/** The public configuration contract of DESIGN.md ("Configuration"); `connections.schema.json` is generated from it. */

/** A GUID as Entra writes tenant, client and object ids. */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

/** Secret names the broker keeps for itself (DESIGN.md): `rt-{connection}`, `broker-seal-key`, `broker-check`. */
const RESERVED_SECRET_PREFIXES = ['rt-', 'broker-'];

const secretName = (what: string) =>
  z
    .string()
    .regex(SECRET_NAME, 'must be a Key Vault secret name (letters, digits, dashes)')
    .refine(
      (name) => !RESERVED_SECRET_PREFIXES.some((prefix) => name.toLowerCase().startsWith(prefix)),
      'names beginning "rt-" or "broker-" are reserved for the broker\'s own secrets (refresh tokens, its seal key); choose another name',
    )
    .describe(`name of the secret in the store that holds ${what}`);

const secretCredential = z
  .object({ type: z.literal('secret'), secretName: secretName('the client secret') })
  .strict();

const managedIdentityCredential = z
  .object({
    type: z.literal('managedIdentity'),
    clientId: z
      .string()
      .regex(GUID, 'must be a client id (GUID)')
      .optional()
      .describe("the user-assigned managed identity's client id; default AZURE_CLIENT_ID"),
  })
  .strict()
  .describe(
    "entra only: the broker's managed identity is a federated credential of the app registration; no secret to expire",
  );

const certificateCredential = z
  .object({
    type: z.literal('certificate'),
    secretName: secretName(
      'a PEM bundle: private key and certificate chain (as Key Vault serves a PEM certificate)',
    ),
  })
  .strict()
  .describe('entra, or oauth2 with tokenEndpointAuthMethod private_key_jwt: an RS256 client assertion');

const credential = z
  .discriminatedUnion('type', [secretCredential, managedIdentityCredential, certificateCredential])
  .describe('absent = public client');

export type CredentialConfig = z.output<typeof credential>;

/** The store secret a credential reads (a client secret or a PEM bundle); none for a managed identity. */
export function credentialSecretName(credential: CredentialConfig | undefined): string | undefined {
  return credential && credential.type !== 'managedIdentity' ? credential.secretName : undefined;
}

const scopes = z.array(z.string().min(1).regex(/^\S+$/, 'must not contain spaces')).min(1);

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

const displayName = z
  .string()
  .min(1)
  .max(100)
  .optional()
  .describe('what invitation pages and the status page call this connection; default its id');

const allowedScopes = z
  .array(z.string().min(1).regex(/^\S+$/, 'must not contain spaces'))
  .optional()
  .describe(
    'what /api/token?scope= may ask for besides `scopes` (case-insensitive); anything else is refused',
  );

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
  allowedScopes,
  displayName,
};

const flowName = z.enum(['authorization_code', 'device_code']);
const flow = flowName.default('authorization_code');
const tenant = z
  .string()
  .regex(TENANT, 'must be common, organizations, consumers, a tenant GUID or a domain');
const tokenEndpointAuthMethod = z
  .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'])
  .optional()
  .describe(
    'how the client authenticates (RFC 6749 §2.3.1; private_key_jwt: OpenID Connect Core §9, with a certificate credential); default: private_key_jwt for a certificate, else per discovery, client_secret_basic when it names both or nothing',
  );

export const entraConnection = z
  .object({
    provider: z.literal('entra'),
    flow,
    authority: endpoint.default('https://login.microsoftonline.com'),
    tenant: tenant.default('common'),
    ...common,
  })
  .strict()
  .refine((c) => !(c.credential?.type === 'managedIdentity' && c.tenant.toLowerCase() === 'consumers'), {
    message:
      'a managedIdentity credential cannot serve tenant "consumers": federated credentials do not work for personal Microsoft accounts. Use a certificate or a secret credential for this connection',
    path: ['credential'],
  });

export const sharepointAcsConnection = z
  .object({
    provider: z.literal('sharepoint-acs'),
    siteUrl: endpoint.describe(
      'https URL of the SharePoint site the add-in was registered on (plain http only for loopback hosts)',
    ),
    accessControlUrl: endpoint.default('https://accounts.accesscontrol.windows.net'),
    ...common,
    credential: secretCredential.describe("the add-in's client secret (appregnew.aspx); required"),
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
    tokenEndpointAuthMethod,
    ...common,
  })
  .strict()
  .refine((c) => c.credential?.type !== 'managedIdentity', {
    message: 'managedIdentity is for entra connections only; use a secret or a certificate credential',
    path: ['credential'],
  })
  .refine(
    (c) =>
      c.tokenEndpointAuthMethod === undefined ||
      (c.credential?.type === 'certificate') === (c.tokenEndpointAuthMethod === 'private_key_jwt'),
    {
      message: 'private_key_jwt goes with a certificate credential, client_secret_* with a secret credential',
      path: ['tokenEndpointAuthMethod'],
    },
  )
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

/**
 * What many connections share (docs/connections.md, "Templates"): every field a connection has but
 * the ones that name one mailbox (`expectedAccount`, `displayName`). Each field is checked on its
 * own here; whether the fields fit together is checked once merged into a connection.
 */
export const templateSchema = z
  .object({
    provider: z.enum(['entra', 'sharepoint-acs', 'oauth2']).optional(),
    flow: flowName.optional(),
    authority: endpoint.optional(),
    tenant: tenant.optional(),
    clientId: z.string().min(1).optional(),
    credential: credential.optional(),
    scopes: scopes.optional(),
    allowedScopes,
    callers: callers.optional(),
    redirectUri: endpoint.optional(),
    rotateAfter: duration.optional(),
    siteUrl: endpoint.optional(),
    accessControlUrl: endpoint.optional(),
    issuer: endpoint.optional(),
    authorizationEndpoint: endpoint.optional(),
    tokenEndpoint: endpoint.optional(),
    deviceAuthorizationEndpoint: endpoint.optional(),
    tokenEndpointAuthMethod,
  })
  .strict();

export type TemplateConfig = z.output<typeof templateSchema>;

const idKey = z.string().regex(CONNECTION_ID, 'ids are lowercase letters, digits and dashes (max 63)');

/**
 * A connection that names a template: its own fields override the template's (arrays and objects
 * replace, never merge). This shape is for editors (the generated JSON Schema); the merged result
 * is validated by `connectionSchema` (`templates.ts`).
 */
export const templatedConnection = templateSchema
  .extend({
    template: idKey.describe('the template whose fields this connection starts from'),
    expectedAccount: common.expectedAccount,
    displayName,
  })
  .strict();

export const connectionsFileSchema = z
  .object({
    $schema: z.string().optional(),
    templates: z.record(idKey, templateSchema).optional(),
    connections: z.record(idKey, z.union([templatedConnection, connectionSchema])),
  })
  .strict();

export type EntraConnectionConfig = z.output<typeof entraConnection>;
export type SharepointAcsConnectionConfig = z.output<typeof sharepointAcsConnection>;
export type OAuth2ConnectionConfig = z.output<typeof oauth2Connection>;
export type ConnectionConfig = z.output<typeof connectionSchema>;

/** A configured connection with its id and resolved defaults. */
export type Connection = ConnectionConfig & {
  id: string;
  /** The template it was merged from, if any. */
  template?: string;
  redirectUri: string;
  rotateAfterMs: number;
};

/** What every endpoint of one simulator reads: the request as parsed once, and the shared state. */
import type { KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { DeviceAuthorizations } from './device.js';
import { appNotFound } from './errors.js';
import type { GrantStore } from './grants.js';
import type { JwtSigner } from './signing.js';
import type { TokenIssuer } from './tokens.js';

/** An app registration. */
export interface SimulatorClient {
  clientId: string;
  /** Absent = public client (which must then send no secret). */
  secret?: string;
  /** Compared exactly, as Entra does. */
  redirectUris: string[];
  /** While true, the right secret is answered AADSTS7000222 (expired). */
  secretExpired?: boolean;
  /** The app's service principal (a managed identity's object id): the `oid` of its app tokens. */
  servicePrincipalId?: string;
  /**
   * App roles assigned to this app's service principal, by the API's app id (or a Microsoft
   * resource's identifier URI, e.g. `https://outlook.office365.com`: `IMAP.AccessAsApp`).
   */
  appRoles?: Record<string, string[]>;
  /**
   * Tenants (tid) holding a service principal of the app; absent = every tenant. A client
   * credentials request in any other answers AADSTS7000229, as Entra does before an admin admits it.
   */
  servicePrincipalTenants?: string[];
  /** Federated credentials: an outside issuer's tokens (a managed identity's) stand in for a secret. */
  federatedCredentials?: SimulatorFederatedCredential[];
  /** PEM certificates uploaded to the app: assertions signed by their keys stand in for a secret. */
  certificates?: string[];
}

/**
 * A federated identity credential of an app: tokens from `issuer` with this `subject` and `audience`.
 * Entra fetches the issuer's signing keys through its discovery document; the simulator is handed
 * them (`publicKeys`, PEM or KeyObject) instead.
 */
export interface SimulatorFederatedCredential {
  issuer: string;
  subject: string;
  audience: string;
  publicKeys: Array<string | KeyObject>;
}

/** An app registration that exposes an API (`api://…`) with app roles. */
export interface SimulatorApi {
  appId: string;
  identifierUri: string;
  /** `api.requestedAccessTokenVersion`: v2 tokens carry the app id as `aud`, v1 the identifier URI. */
  accessTokenVersion: 1 | 2;
}

export type SimulatorEndpoint = 'token' | 'authorize' | 'resource' | 'devicecode' | 'devicelogin' | 'keys';

/** A request routed to an endpoint, its body read (the form is empty unless it was form-encoded). */
export interface SimulatorRequest {
  endpoint: SimulatorEndpoint;
  /** The tenant segment of the path (authorize, token, devicecode). */
  tenant?: string;
  method: string;
  url: URL;
  form: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Aborted when the caller goes away before the answer is sent. */
  signal: AbortSignal;
}

export interface SimulatorContext {
  /** Path prefix the simulator is mounted under ('' = none); pages post back under it. */
  prefix: string;
  now(): number;
  clients: Map<string, SimulatorClient>;
  grants: GrantStore;
  devices: DeviceAuthorizations;
  tokens: TokenIssuer;
  signer: JwtSigner;
  /** APIs apps may ask client credentials tokens for, by app id. */
  apis: Map<string, SimulatorApi>;
  /** `{scheme}://{host}{prefix}` as the request reached the simulator: the v2 issuer's authority. */
  issuerBase(req: SimulatorRequest): string;
}

/** The app registration, or AADSTS700016 as Entra answers an unknown client id. */
export function registeredClient(ctx: SimulatorContext, clientId: string, tenant: string): SimulatorClient {
  const client = ctx.clients.get(clientId);
  if (!client) throw appNotFound(clientId, tenant);
  return client;
}

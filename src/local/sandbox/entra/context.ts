/** What every endpoint of one simulator reads: the request as parsed once, and the shared state. */
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
}

export type SimulatorEndpoint = 'token' | 'authorize' | 'resource' | 'devicecode' | 'devicelogin';

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
}

/** The app registration, or AADSTS700016 as Entra answers an unknown client id. */
export function registeredClient(ctx: SimulatorContext, clientId: string, tenant: string): SimulatorClient {
  const client = ctx.clients.get(clientId);
  if (!client) throw appNotFound(clientId, tenant);
  return client;
}

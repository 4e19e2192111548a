import type { Clock } from '../clock.js';
import type { Connection } from '../config/connections.js';
import type { ProviderErrorInfo } from '../errors.js';
import type { Logger } from '../logger.js';

/** One normalized token response, whatever the dialect (numbers sent as strings already converted). */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  /** Seconds the access token lives, from the response's `expires_in` (or `expires_on`). */
  expiresIn: number;
  /** Space-separated scopes the provider granted, when it said. */
  scope?: string;
  refreshToken?: string;
  idToken?: string;
  /** Seconds the refresh token lives, when the provider says (`refresh_token_expires_in`). */
  refreshTokenExpiresIn?: number;
}

/** Who consented, learned after a code exchange (Entra: the id_token; ACS: SharePoint's currentuser). */
export interface AccountInfo {
  account?: string;
  tenant?: string;
}

export interface AuthorizeParams {
  state: string;
  nonce: string;
  /** PKCE S256 challenge; dialects whose provider lacks PKCE (ACS) ignore it. */
  codeChallenge: string;
  redirectUri: string;
}

export interface CodeExchangeParams {
  code: string;
  codeVerifier: string;
  redirectUri: string;
}

/** RFC 8628 §3.2 device authorization response, normalized. */
export interface DeviceAuthorization {
  /** Secret: redeemed at the token endpoint; never shown, logged or sent to a browser unsealed. */
  deviceCode: string;
  /** What the person types at `verificationUri`. */
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** Seconds the device code lives. */
  expiresIn: number;
  /** Seconds to wait between polls (RFC 8628 default 5). */
  interval: number;
  /** The provider's own instruction for the person (Entra: "To sign in, use a web browser…"). */
  message?: string;
}

/**
 * One RFC 8628 §3.4–3.5 poll of the token endpoint. The device errors the spec makes part of the
 * flow are results, not errors; everything else is thrown as a classified `BrokerError`.
 */
export type DevicePollResult =
  | { status: 'pending' }
  | { status: 'slow_down' }
  | { status: 'declined'; providerError: ProviderErrorInfo }
  | { status: 'expired'; providerError: ProviderErrorInfo }
  | { status: 'bad_code'; providerError: ProviderErrorInfo }
  | { status: 'tokens'; tokens: TokenSet };

export interface RefreshParams {
  refreshToken: string;
  /** Scopes for another resource from the same grant; absent = the connection's own scopes. */
  scopes?: string[];
}

/**
 * A provider dialect: the protocol operations of one kind of identity provider for one connection.
 * Every failure is a `BrokerError` classified for the *refresh* context: a dead grant is
 * `consent_required`, a rejected client `client_misconfigured`, a provider outage (429, 5xx, timeout,
 * a body that is not the promised JSON) `upstream_unavailable`, a bad `scope` `invalid_request`.
 */
export interface ProviderDialect {
  authorizeUrl(params: AuthorizeParams): Promise<string>;
  exchangeCode(params: CodeExchangeParams): Promise<TokenSet>;
  refresh(params: RefreshParams): Promise<TokenSet>;
  /** The consenting account; `nonce` is checked against the id_token when there is one. */
  accountOf(tokens: TokenSet, nonce?: string): Promise<AccountInfo>;
  /** Scopes sent by default (the configured ones plus what the broker always adds). */
  readonly defaultScopes: string[];
  /** RFC 8628 §3.1: asks for a device code and a user code; only dialects whose provider has the flow. */
  startDeviceAuthorization?(): Promise<DeviceAuthorization>;
  /** RFC 8628 §3.4: exactly one token request for `deviceCode`; never retried (the code is a grant). */
  pollDeviceAuthorization?(deviceCode: string): Promise<DevicePollResult>;
  /**
   * When a grant consented at `consentedAtMs` (epoch ms) dies whatever is done to keep it alive, for
   * providers with a fixed refresh-token lifetime they do not announce (ACS: 6 calendar months).
   * Consulted only when the token response carried no `refresh_token_expires_in`.
   */
  hardExpiry?(consentedAtMs: number): Date | undefined;
}

/** What every dialect is built with. `fetch` is injectable so tests reach simulators over real HTTP. */
export interface DialectDeps {
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  /** The client secret from the store (`credential.secretName`), or undefined for a public client. */
  clientSecret: () => Promise<string | undefined>;
  /** Per-attempt timeout of every network call, ms. */
  timeoutMs?: number;
  /** Retries after a 429/5xx/connection failure; total wait is capped so callers hear back in seconds. */
  maxRetries?: number;
}

export type DialectFactory = (connection: Connection, deps: DialectDeps) => ProviderDialect;

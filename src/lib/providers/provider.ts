import type { Connection } from '../config/connections.js';
import type { DeviceAuthorization, DevicePollResult, HttpDeps, TokenSet } from '../oauth/index.js';

// The protocol's normalized results are the port's too: the rest of the broker imports them from here.
export type { DeviceAuthorization, DevicePollResult, TokenSet } from '../oauth/index.js';

/** Who consented, learned after a code exchange (Entra: the id_token; ACS: SharePoint's currentuser). */
export interface AccountInfo {
  account?: string;
  tenant?: string;
  /** The account's stable id (Entra: the id_token's `oid`; oauth2: `sub`): pins a connected grant. */
  accountId?: string;
  /** False when `account` is an e-mail the provider did not mark `email_verified`: it never matches `expectedAccount`. */
  emailVerified?: boolean;
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
  /**
   * RFC 6749 §4.4: an app-only token with the client's own credential, for `scopes` (default the
   * connection's one `{resource}/.default`). No refresh token is asked for or kept.
   */
  clientCredentials?(scopes?: string[]): Promise<TokenSet>;
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

/**
 * What every dialect is built with: what `send` needs (`fetch` is injectable so tests reach
 * simulators over real HTTP), and the client secret.
 */
export interface DialectDeps extends HttpDeps {
  /**
   * The value of the store secret `credential.secretName` (a client secret, or a certificate's PEM
   * bundle), or undefined for a public client or a managed identity.
   */
  clientSecret: () => Promise<string | undefined>;
  /** A token of the managed identity `clientId` for `audience` (a `managedIdentity` credential). */
  managedIdentityToken?: (clientId: string | undefined, audience: string) => Promise<string>;
  /** Told the `notAfter` of a certificate credential whenever one is loaded (status deadlines). */
  certificateLoaded?: (secretName: string, notAfter: Date) => void;
}

export type DialectFactory = (connection: Connection, deps: DialectDeps) => ProviderDialect;

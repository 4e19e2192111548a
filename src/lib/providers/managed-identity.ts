import type { AccessToken, TokenCredential } from '@azure/identity';
import type { Clock } from '../clock.js';
import { BrokerError } from '../errors.js';

/**
 * A managed identity as the app registration's credential (docs/design.md, "Connections": `{"type": "managedIdentity"}`):
 * the broker's identity is a federated credential of the app, and a token it gets for the token
 * exchange audience is the client assertion (RFC 7521 §4.2, Entra's workload identity federation).
 */

/** Builds the credential of a managed identity (client id of a user-assigned one, or undefined). */
export type ManagedIdentityCredentialFactory = (
  clientId: string | undefined,
) => TokenCredential | Promise<TokenCredential>;

/**
 * The SDK's `ManagedIdentityCredential`, loaded only when a connection uses it; the client id falls
 * back to `AZURE_CLIENT_ID`, then to the system-assigned identity.
 */
export const sdkManagedIdentityCredential: ManagedIdentityCredentialFactory = async (clientId) => {
  const { ManagedIdentityCredential } = await import('@azure/identity');
  const id = clientId ?? process.env.AZURE_CLIENT_ID;
  // Few retries: callers are answered within seconds, and the next request tries again anyway.
  const retryOptions = { maxRetries: 2 };
  return id
    ? new ManagedIdentityCredential({ clientId: id, retryOptions })
    : new ManagedIdentityCredential({ retryOptions });
};

/** The audience a federated credential expects, per cloud (the authority's host). */
export function tokenExchangeAudience(authority: string): string {
  const host = new URL(authority).hostname.toLowerCase();
  if (host === 'login.microsoftonline.us') return 'api://AzureADTokenExchangeUSGov';
  if (host === 'login.chinacloudapi.cn' || host === 'login.partner.microsoftonline.cn')
    return 'api://AzureADTokenExchangeChina';
  return 'api://AzureADTokenExchange';
}

/** A cached token with less than this left is renewed first (the SDK caches too; this is the guarantee). */
export const RENEW_BEFORE_MS = 5 * 60 * 1000;
/** A token is never sent with less than this left: it would expire in flight. */
const MIN_LIFE_MS = 30 * 1000;
const DEFAULT_TIMEOUT_MS = 5000;
const RETRY_AFTER_S = 5;

export interface ManagedIdentityTokensOptions {
  factory?: ManagedIdentityCredentialFactory;
  clock: Clock;
  /** How long one `getToken` may take before the caller hears `upstream_unavailable` (default 5 s). */
  timeoutMs?: number;
}

/** Tokens of managed identities for token exchange audiences, cached per (identity, audience); never logged. */
export class ManagedIdentityTokens {
  private readonly credentials = new Map<string, Promise<TokenCredential>>();
  private readonly cached = new Map<string, AccessToken>();
  private readonly pending = new Map<string, Promise<AccessToken>>();

  constructor(private readonly options: ManagedIdentityTokensOptions) {}

  /**
   * A token of the identity `clientId` for `audience` with at least 5 minutes to live when it comes
   * from the cache, and never an expired one; else `upstream_unavailable` with `Retry-After`.
   */
  async token(clientId: string | undefined, audience: string, connectionId?: string): Promise<string> {
    const key = `${clientId ?? ''} ${audience}`;
    const now = this.options.clock.now();
    const hit = this.cached.get(key);
    if (hit && hit.expiresOnTimestamp - now > RENEW_BEFORE_MS) return hit.token;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetch(key, clientId, audience, connectionId).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const fresh = await pending;
    if (fresh.expiresOnTimestamp - this.options.clock.now() < MIN_LIFE_MS) {
      this.cached.delete(key);
      throw unavailable(
        `The managed identity${named(clientId)} answered with a token for ${audience} that is expired or about to expire`,
        connectionId,
      );
    }
    return fresh.token;
  }

  /** One `getToken` with the timeout: for `broker check`. Throws the failure as `upstream_unavailable`. */
  async probe(clientId: string | undefined, audience: string): Promise<void> {
    await this.fetch(`${clientId ?? ''} ${audience}`, clientId, audience);
  }

  private credential(clientId: string | undefined): Promise<TokenCredential> {
    const key = clientId ?? '';
    let credential = this.credentials.get(key);
    if (!credential) {
      const factory = this.options.factory ?? sdkManagedIdentityCredential;
      credential = Promise.resolve().then(() => factory(clientId));
      // A failure to build it (no identity configured) is not remembered: the next request tries again.
      credential.catch(() => this.credentials.delete(key));
      this.credentials.set(key, credential);
    }
    return credential;
  }

  private async fetch(
    key: string,
    clientId: string | undefined,
    audience: string,
    connectionId?: string,
  ): Promise<AccessToken> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      // The timer starts once the credential exists: loading the SDK the first time does not count.
      const credential = await this.credential(clientId);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new Error('timeout'));
        }, timeoutMs);
      });
      const token = await Promise.race([
        credential.getToken(`${audience}/.default`, { abortSignal: abort.signal }),
        timeout,
      ]);
      if (!token) throw new Error('no token');
      this.cached.set(key, token);
      return token;
    } catch (err) {
      const why =
        err instanceof Error && err.message === 'timeout'
          ? `did not answer within ${timeoutMs} ms`
          : `failed (${err instanceof Error ? err.name : typeof err})`;
      throw unavailable(
        `The managed identity${named(clientId)} could not get a token for ${audience}: the identity endpoint ${why}`,
        connectionId,
        err,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

const named = (clientId: string | undefined) => (clientId ? ` ${clientId}` : '');

function unavailable(what: string, connectionId: string | undefined, cause?: unknown): BrokerError {
  return new BrokerError(
    'upstream_unavailable',
    `${what}; nothing was changed. Try again in ${RETRY_AFTER_S} s. If it persists, check that the Function App ` +
      'has this identity assigned (and AZURE_CLIENT_ID or credential.clientId names it).',
    { connectionId, retryAfter: RETRY_AFTER_S, cause },
  );
}

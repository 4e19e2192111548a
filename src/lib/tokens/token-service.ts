import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import { type AppOnlyConnection, type Connection, isAppOnly } from '../config/connections.js';
import { BrokerError, isBrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenSet } from '../providers/provider.js';
import type { AppOnlyService } from './app-only-service.js';
import type { AppOnlyState } from './app-only-state.js';
import type { GrantService } from './grant-service.js';
import type { GrantTags } from './grant-store.js';
import { checkRequestedScopes, isOwnScopes } from './scope-policy.js';

/** Callers never receive a token with less life than this (docs/design.md, "Token vending and rotation"). */
export const MIN_TOKEN_LIFE_MS = 30_000;

/**
 * Scope sets cached per connection (docs/design.md, "Hostile input"): a caller cycling scope sets
 * cannot grow the cache without bound; the least recently used set is dropped first.
 */
export const MAX_SCOPE_SETS_PER_CONNECTION = 32;

export interface VendedToken {
  accessToken: string;
  tokenType: string;
  /** Epoch ms. */
  expiresAt: number;
  scope: string;
  /** The consenting account from the stored tags, for XOAUTH2. */
  account?: string;
  /** Answered from memory, or after a refresh this call waited for (the audit line says which). */
  served: 'cache' | 'refresh';
}

/**
 * Vends access tokens from an in-memory cache keyed by (connection, scope). A hit does no I/O; a
 * token inside the refresh-ahead window is served while one background refresh runs; a missing or
 * nearly expired one is refreshed while callers wait, once per key however many wait.
 */
export class TokenService {
  /**
   * Connection id → its cached tokens. Grouped by connection so that bounding one connection's
   * scope sets, or dropping them, never walks the tokens of every other connection (a rotation pass
   * primes thousands in a row). Most connections only ever hold a token for their own scopes: that
   * one is held as it is; a second scope set turns it into a map by scope key, least recently used
   * first (a map per connection is ~0.3 KB, a tenth of the budget per connection at 100,000).
   */
  private readonly cache = new Map<string, VendedToken | Map<string, VendedToken>>();
  private readonly inflight = new Map<string, Promise<VendedToken>>();

  constructor(
    private readonly deps: {
      catalog: ConnectionCatalog;
      grants: GrantService;
      clock: Clock;
      logger: Logger;
      refreshAheadMs: number;
      /** App-only connections (`"flow": "client_credentials"`): a client credentials request instead of a refresh. */
      appOnly?: AppOnlyService;
    },
  ) {}

  /** A token for the connection's own scopes, or for `scopes` within its scope policy. */
  async getAccessToken(connectionId: string, scopes?: string[]): Promise<VendedToken> {
    const connection = await this.deps.catalog.get(connectionId);
    if (scopes) checkRequestedScopes(connection, scopes);
    const key = scopeKey(scopes);
    const cached = this.cached(connectionId, key);
    if (cached) this.touch(connectionId, key, cached);
    const life = cached ? cached.expiresAt - this.deps.clock.now() : 0;
    if (cached && life > this.deps.refreshAheadMs) return cached;
    if (cached && life > MIN_TOKEN_LIFE_MS) {
      this.refreshOnce(key, connection, scopes).catch((err: unknown) => {
        this.deps.logger.warn('token.refresh_ahead_failed', {
          connection: connectionId,
          code: err instanceof BrokerError ? err.code : 'internal_error',
        });
      });
      return cached;
    }
    return this.refreshOnce(key, connection, scopes);
  }

  /** Puts a token obtained elsewhere (consent, rotation) in the cache for the connection's own scopes. */
  prime(connectionId: string, tokens: TokenSet, account?: string): void {
    this.remember(connectionId, OWN_SCOPES, this.toVended(tokens, account));
  }

  /** Drops every cached token of a connection (its grant is dead or was replaced). */
  invalidate(connectionId: string): void {
    this.cache.delete(connectionId);
  }

  /**
   * One refresh of the connection's own grant outside any caller (the rotation pass); the access
   * token it mints is cached like any other. Returns the grant's new tags.
   */
  async rotate(connection: Connection): Promise<GrantTags> {
    const { tokens, tags } = await this.redeem(connection);
    this.prime(connection.id, tokens, tags.account);
    return tags;
  }

  /**
   * One client credentials request for an app-only connection outside any caller (the rotation
   * pass proves its credential this way); the token is cached like any other. Returns its state.
   */
  async proveAppOnly(connection: AppOnlyConnection): Promise<AppOnlyState | undefined> {
    const { tokens, state } = await this.appOnly().token(connection);
    this.prime(connection.id, tokens);
    return state;
  }

  /** Epoch ms of this instance's last successful app-only token request for the connection. */
  appOnlyLastSuccess(connectionId: string): number | undefined {
    return this.deps.appOnly?.lastSuccessAt(connectionId);
  }

  private appOnly(): AppOnlyService {
    if (!this.deps.appOnly)
      throw new TypeError('TokenService needs appOnly for client_credentials connections');
    return this.deps.appOnly;
  }

  /** Every refresh passes here, so a grant found dead drops the connection's cached tokens at once. */
  private async redeem(
    connection: Connection,
    scopes?: string[],
  ): Promise<{ tokens: TokenSet; tags: GrantTags }> {
    // App-only: no grant and no account; the XOAUTH2 user is the caller's `user=` (a listed mailbox).
    if (isAppOnly(connection)) {
      const { tokens } = await this.appOnly().token(connection, scopes);
      return { tokens, tags: { status: 'connected' } };
    }
    try {
      return await this.deps.grants.redeem(connection, scopes);
    } catch (err) {
      if (isBrokerError(err, 'consent_required') && isOwnScopes(connection, scopes)) {
        this.invalidate(connection.id);
      }
      throw err;
    }
  }

  private refreshOnce(key: string, connection: Connection, scopes?: string[]): Promise<VendedToken> {
    const flightKey = `${connection.id}\n${key}`;
    let flight = this.inflight.get(flightKey);
    if (!flight) {
      flight = this.redeem(connection, scopes)
        .then(({ tokens, tags }): VendedToken => {
          const vended = this.toVended(tokens, tags.account);
          this.remember(connection.id, key, vended);
          return { ...vended, served: 'refresh' };
        })
        .finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, flight);
    }
    return flight;
  }

  /** The cached token of a connection for a scope key, if any. */
  private cached(connectionId: string, key: string): VendedToken | undefined {
    const held = this.cache.get(connectionId);
    if (held instanceof Map) return held.get(key);
    return key === OWN_SCOPES ? held : undefined;
  }

  /** Holds a token and marks its key most recently used (a Map iterates in insertion order). */
  private touch(
    connectionId: string,
    key: string,
    vended: VendedToken,
  ): Map<string, VendedToken> | undefined {
    const held = this.cache.get(connectionId);
    if (!(held instanceof Map)) {
      if (key === OWN_SCOPES) {
        this.cache.set(connectionId, vended);
        return undefined;
      }
      const sets = new Map<string, VendedToken>();
      if (held) sets.set(OWN_SCOPES, held);
      sets.set(key, vended);
      this.cache.set(connectionId, sets);
      return sets;
    }
    held.delete(key);
    held.set(key, vended);
    return held;
  }

  /** Caches a token, dropping the connection's least recently used scope set beyond the bound. */
  private remember(connectionId: string, key: string, vended: VendedToken): void {
    const sets = this.touch(connectionId, key, vended);
    if (!sets) return;
    for (const stale of sets.keys()) {
      if (sets.size <= MAX_SCOPE_SETS_PER_CONNECTION) break;
      sets.delete(stale);
    }
  }

  private toVended(tokens: TokenSet, account?: string): VendedToken {
    return {
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      expiresAt: this.deps.clock.now() + tokens.expiresIn * 1000,
      scope: tokens.scope ?? '',
      account,
      served: 'cache',
    };
  }
}

/** The scope key of a connection's own scopes. */
const OWN_SCOPES = '';

/**
 * Scope lists are sets compared case-insensitively, as Entra compares scopes: `a B`, `b a` and `A b`
 * share one cache entry (and one refresh), so cycling spellings cannot multiply refreshes.
 */
function scopeKey(scopes?: string[]): string {
  return scopes && scopes.length > 0
    ? [...new Set(scopes.map((s) => s.toLowerCase()))].sort().join(' ')
    : OWN_SCOPES;
}

/** RFC 7628-style SASL XOAUTH2 initial response used by IMAP, POP and SMTP, base64-encoded. */
export function xoauth2(account: string, accessToken: string): string {
  return Buffer.from(`user=${account}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
}

import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import type { Connection } from '../config/connections.js';
import { BrokerError, isBrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenSet } from '../providers/provider.js';
import type { GrantService } from './grant-service.js';
import type { GrantTags } from './grant-store.js';
import { checkRequestedScopes, isOwnScopes } from './scope-policy.js';

/** Callers never receive a token with less life than this (DESIGN.md, "Token vending"). */
export const MIN_TOKEN_LIFE_MS = 30_000;

/**
 * Scope sets cached per connection (DESIGN.md, "Hostile input rules"): a caller cycling scope sets
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
   * Connection id → its cached tokens by cache key, least recently used first. Grouped by
   * connection so that bounding one connection's scope sets, or dropping them, never walks the
   * tokens of every other connection (a rotation pass primes thousands in a row).
   */
  private readonly cache = new Map<string, Map<string, VendedToken>>();
  private readonly inflight = new Map<string, Promise<VendedToken>>();

  constructor(
    private readonly deps: {
      catalog: ConnectionCatalog;
      grants: GrantService;
      clock: Clock;
      logger: Logger;
      refreshAheadMs: number;
    },
  ) {}

  /** A token for the connection's own scopes, or for `scopes` within its scope policy. */
  async getAccessToken(connectionId: string, scopes?: string[]): Promise<VendedToken> {
    const connection = await this.deps.catalog.get(connectionId);
    if (scopes) checkRequestedScopes(connection, scopes);
    const key = cacheKey(connectionId, scopes);
    const cached = this.cache.get(connectionId)?.get(key);
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
    this.remember(connectionId, cacheKey(connectionId), this.toVended(tokens, account));
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

  /** Every refresh passes here, so a grant found dead drops the connection's cached tokens at once. */
  private async redeem(connection: Connection, scopes?: string[]) {
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
    let flight = this.inflight.get(key);
    if (!flight) {
      flight = this.redeem(connection, scopes)
        .then(({ tokens, tags }): VendedToken => {
          const vended = this.toVended(tokens, tags.account);
          this.remember(connection.id, key, vended);
          return { ...vended, served: 'refresh' };
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, flight);
    }
    return flight;
  }

  /** Marks a key most recently used (a Map iterates in insertion order). */
  private touch(connectionId: string, key: string, vended: VendedToken): Map<string, VendedToken> {
    let sets = this.cache.get(connectionId);
    if (!sets) {
      sets = new Map();
      this.cache.set(connectionId, sets);
    }
    sets.delete(key);
    sets.set(key, vended);
    return sets;
  }

  /** Caches a token, dropping the connection's least recently used scope set beyond the bound. */
  private remember(connectionId: string, key: string, vended: VendedToken): void {
    const sets = this.touch(connectionId, key, vended);
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

/**
 * Scope lists are sets compared case-insensitively, as Entra compares scopes: `a B`, `b a` and `A b`
 * share one cache entry (and one refresh), so cycling spellings cannot multiply refreshes.
 */
function cacheKey(connectionId: string, scopes?: string[]): string {
  const normalized =
    scopes && scopes.length > 0 ? [...new Set(scopes.map((s) => s.toLowerCase()))].sort().join(' ') : '';
  return `${connectionId}\n${normalized}`;
}

/** RFC 7628-style SASL XOAUTH2 initial response used by IMAP, POP and SMTP, base64-encoded. */
export function xoauth2(account: string, accessToken: string): string {
  return Buffer.from(`user=${account}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
}

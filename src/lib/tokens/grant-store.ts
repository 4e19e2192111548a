import { type Clock, systemClock } from '../clock.js';
import {
  BrokerError,
  type Failure,
  lastErrorOf,
  REMEDY_HINTS,
  REMEDY_KINDS,
  type RemedyHint,
  type RemedyKind,
  UNCLASSIFIED_FAILURES,
} from '../errors.js';
import { refreshTokenSecretName, type SecretProperties, type SecretStore } from '../store/secret-store.js';

/** Connection states of docs/design.md ("Stored data"); `not_connected` is the absence of a stored grant. */
export type GrantStatus = 'connected' | 'needs_consent';

/** Non-secret metadata kept in the `rt-{id}` secret's tags (docs/design.md, "Stored data"). */
export interface GrantTags {
  account?: string;
  /** The consenting account's stable id (Entra `oid`, oauth2 `sub`): later consents must match it. */
  accountId?: string;
  tenant?: string;
  scopes?: string;
  consentedAt?: string;
  refreshedAt?: string;
  status: GrantStatus;
  /** Readable, for the status page and events (`invalid_grant AADSTS50173`); nothing parses it. */
  lastError?: string;
  /** The classified failure behind `lastError`, as its provider's table gave it (see `failureTags`). */
  remedy?: RemedyKind;
  reason?: string;
  hint?: RemedyHint;
  hardExpiresAt?: string;
}

const oneOf = <T extends string>(values: readonly T[], value: string | undefined): T | undefined =>
  values.includes(value as T) ? (value as T) : undefined;

/** The tags a classified failure leaves on its grant, written once and read back as they are. */
export function failureTags(err: BrokerError): Pick<GrantTags, 'lastError' | 'remedy' | 'reason' | 'hint'> {
  return {
    lastError: lastErrorOf(err),
    remedy: err.failure?.remedy,
    reason: err.failure?.reason,
    hint: err.failure?.hint,
  };
}

/** Tags of a grant that is healthy again: no failure left behind. */
export const NO_FAILURE: Pick<GrantTags, 'lastError' | 'remedy' | 'reason' | 'hint'> = {
  lastError: undefined,
  remedy: undefined,
  reason: undefined,
  hint: undefined,
};

/**
 * The failure a stored grant carries: never connected, dead (`needs_consent`), a rejected client
 * (`lastError` while connected), or none. A grant stored before failures were (no `remedy` tag)
 * falls back on its state.
 */
export function storedFailure(tags: GrantTags | undefined): Failure | undefined {
  if (!tags)
    return { class: 'dead', remedy: 'reconnect', reason: 'never connected', hint: 'never_connected' };
  const dead = tags.status === 'needs_consent';
  if (!dead && !tags.lastError) return undefined;
  const said = tags.lastError ? `the provider answered ${tags.lastError}` : undefined;
  const unclassified = UNCLASSIFIED_FAILURES[dead ? 'consent_required' : 'client_misconfigured']!;
  return {
    ...unclassified,
    remedy: tags.remedy ?? unclassified.remedy,
    reason: tags.reason ?? said ?? unclassified.reason,
    hint: tags.hint,
    account: tags.account,
  };
}

export interface StoredGrant {
  refreshToken: string;
  version: string;
  tags: GrantTags;
}

/** Key Vault caps tag values at 256 characters; a long scope list is cut at a word boundary. */
const TAG_VALUE_MAX = 256;

function fitTag(value: string): string {
  if (value.length <= TAG_VALUE_MAX) return value;
  const cut = value.slice(0, TAG_VALUE_MAX - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > 0 ? cut.slice(0, space) : cut}…`;
}

function toTags(tags: GrantTags): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (typeof v === 'string' && v !== '') out[k] = fitTag(v);
  return out;
}

export function fromTags(tags: Record<string, string>): GrantTags {
  return {
    account: tags.account || undefined,
    accountId: tags.accountId || undefined,
    tenant: tags.tenant || undefined,
    scopes: tags.scopes || undefined,
    consentedAt: tags.consentedAt || undefined,
    refreshedAt: tags.refreshedAt || undefined,
    status: tags.status === 'needs_consent' ? 'needs_consent' : 'connected',
    lastError: tags.lastError || undefined,
    remedy: oneOf(REMEDY_KINDS, tags.remedy),
    reason: tags.reason || undefined,
    hint: oneOf(REMEDY_HINTS, tags.hint),
    hardExpiresAt: tags.hardExpiresAt || undefined,
  };
}

export interface GrantStoreOptions {
  /**
   * How long a grant read from the store is reused, ms (default 2000; 0 disables). A burst of
   * refreshes for several scopes of one connection then reads the refresh token once.
   */
  readCacheMs?: number;
  /** The broker's clock: a test moves it past the read cache instead of waiting. */
  clock?: Clock;
}

const DEFAULT_READ_CACHE_MS = 2000;

/**
 * The refresh tokens of all connections, one `rt-{id}` secret each, whose value is the refresh token
 * alone. Every new refresh token is a new version, so the store's history is the audit trail.
 *
 * Reads are cached briefly (`readCacheMs`) and every write by this process updates the cache, so
 * within one process a cached grant is always the latest. Other processes writing the same secret
 * (another Function instance, the CLI) are not seen until the entry expires; under a cross-instance
 * lock, `GrantService` calls `invalidate` before it reads, so the holder reads the store itself.
 *
 * A refresh token whose write failed (store down after the provider rotated it) is kept in memory as
 * the connection's latest grant until a write succeeds: the next refresh redeems it, not the older
 * token in the store, so no refresh token is redeemed twice (and a provider that returns none writes
 * it with its tags).
 */
export class GrantStore {
  private readonly recent = new Map<string, { grant: StoredGrant; until: number }>();
  private readonly unsaved = new Map<string, StoredGrant>();
  private readonly readCacheMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly store: SecretStore,
    options: GrantStoreOptions = {},
  ) {
    this.readCacheMs = options.readCacheMs ?? DEFAULT_READ_CACHE_MS;
    this.clock = options.clock ?? systemClock;
  }

  async read(connectionId: string): Promise<StoredGrant | undefined> {
    const pending = this.unsaved.get(connectionId);
    if (pending) return copy(pending);
    const hit = this.recent.get(connectionId);
    if (hit && hit.until > this.clock.now()) return copy(hit.grant);
    this.recent.delete(connectionId);
    this.sweep();
    const secret = await this.store.getSecret(refreshTokenSecretName(connectionId));
    if (!secret) return undefined;
    const grant = { refreshToken: secret.value, version: secret.version, tags: fromTags(secret.tags) };
    this.remember(connectionId, grant);
    return copy(grant);
  }

  async save(connectionId: string, refreshToken: string, tags: GrantTags): Promise<StoredGrant> {
    if (!refreshToken)
      throw new BrokerError('upstream_unavailable', 'Refusing to store an empty refresh token.');
    let props: SecretProperties;
    try {
      props = await this.store.setSecret(refreshTokenSecretName(connectionId), refreshToken, {
        tags: toTags(tags),
      });
    } catch (err) {
      // The write may or may not have landed; either way this token is the newest there is.
      const version = this.unsaved.get(connectionId)?.version ?? this.recent.get(connectionId)?.grant.version;
      this.recent.delete(connectionId);
      this.unsaved.set(connectionId, { refreshToken, version: version ?? '', tags: { ...tags } });
      throw err;
    }
    this.unsaved.delete(connectionId);
    this.remember(connectionId, { refreshToken, version: props.version, tags });
    return { refreshToken, version: props.version, tags };
  }

  /** Changes tags only (no new version of the value), e.g. to mark a dead grant. */
  async updateTags(grant: StoredGrant, connectionId: string, tags: GrantTags): Promise<void> {
    // A token not yet in the store is written now, with these tags.
    if (this.unsaved.get(connectionId)?.refreshToken === grant.refreshToken) {
      await this.save(connectionId, grant.refreshToken, tags);
      return;
    }
    try {
      await this.store.updateSecretProperties(refreshTokenSecretName(connectionId), grant.version, {
        tags: toTags(tags),
      });
    } catch (err) {
      this.invalidate(connectionId);
      throw err;
    }
    this.remember(connectionId, { ...grant, tags });
  }

  /**
   * Forgets everything held of a deleted connection, unsaved tokens included: a connection created
   * later with the same id must never be served its predecessor's grant.
   */
  forget(connectionId: string): void {
    this.recent.delete(connectionId);
    this.unsaved.delete(connectionId);
  }

  /** Forgets cached reads (not unsaved tokens): of one connection, or all. */
  invalidate(connectionId?: string): void {
    if (connectionId === undefined) this.recent.clear();
    else this.recent.delete(connectionId);
  }

  private remember(connectionId: string, grant: StoredGrant): void {
    if (this.readCacheMs <= 0) return;
    // Cached as a read would see it: tags as stored (cut to Key Vault's limits).
    const stored = {
      refreshToken: grant.refreshToken,
      version: grant.version,
      tags: fromTags(toTags(grant.tags)),
    };
    // Re-inserted at the end, so the map stays in expiry order for `sweep`.
    this.recent.delete(connectionId);
    this.recent.set(connectionId, { grant: stored, until: this.clock.now() + this.readCacheMs });
    this.sweep();
  }

  /**
   * Drops expired reads from the front (oldest first): a refresh token is held in memory for the
   * read cache's few seconds, not for as long as the process runs — at 100,000 connections that
   * was ~0.5 KB each, all refresh tokens in the heap. Stops at the first live entry (amortized O(1)).
   */
  private sweep(): void {
    const now = this.clock.now();
    for (const [id, entry] of this.recent) {
      if (entry.until > now) return;
      this.recent.delete(id);
    }
  }
}

function copy(grant: StoredGrant): StoredGrant {
  return { ...grant, tags: { ...grant.tags } };
}

import type { Person } from '../auth/person-auth.js';
import type { Clock } from '../clock.js';
import type { Connection } from '../config/connections.js';
import { BrokerError, type Failure, isBrokerError } from '../errors.js';
import { startPath } from '../links.js';
import type { RefreshLock } from '../lock/lock.js';
import type { Logger } from '../logger.js';
import type { AccountInfo, ProviderDialect, TokenSet } from '../providers/provider.js';
import { checkExpectedAccount, checkPinnedAccount } from './account-pinning.js';
import { assertDelegated } from './delegated-only.js';
import {
  failureTags,
  type GrantStore,
  type GrantTags,
  NO_FAILURE,
  type StoredGrant,
  storedFailure,
} from './grant-store.js';
import { isOwnScopes } from './scope-policy.js';

export type DialectLookup = (connection: Connection) => ProviderDialect;

/** A grant that cannot be used without a new consent; `failure` says why (the stored one, or the provider's). */
export function consentRequired(
  connectionId: string,
  detail: string,
  failure?: Failure,
  cause?: BrokerError,
): BrokerError {
  return new BrokerError('consent_required', `${detail} Open ${startPath(connectionId)} to consent.`, {
    connectionId,
    providerError: cause?.providerError,
    failure,
    cause,
  });
}

/**
 * Told of every tag write that changes a connection's state; the grant service is the only writer.
 * The events writer (`events/connection-events.ts`) implements it: the core names no one above it.
 */
export interface GrantChanges {
  grantChanged(connection: Connection, before: GrantTags | undefined, after: GrantTags): void;
}

/**
 * Every use of a connection's refresh token goes through here, inside that connection's lock, on the
 * *latest* stored token: a provider with rotation and reuse detection revokes the whole grant when it
 * sees one refresh token twice (docs/design.md, "Token vending and rotation").
 */
export class GrantService {
  constructor(
    private readonly deps: {
      grants: GrantStore;
      lock: RefreshLock;
      dialect: DialectLookup;
      clock: Clock;
      logger: Logger;
      /** Told of every tag write that changes a connection's state (this is the only writer). */
      events?: GrantChanges;
    },
  ) {}

  /**
   * Redeems the stored refresh token (for `scopes`, or the connection's own) and stores the rotated one
   * first. A failure carries its classified `failure`, naming the connected account; the words of its
   * remedy are put on at the edge.
   */
  async redeem(connection: Connection, scopes?: string[]): Promise<{ tokens: TokenSet; tags: GrantTags }> {
    let read: GrantTags | undefined;
    try {
      return await this.deps.lock.withLock(connection.id, async () => {
        const grant = await this.readLatest(connection.id);
        read = grant?.tags;
        return this.redeemLocked(connection, grant, scopes);
      });
    } catch (err) {
      if (isBrokerError(err)) {
        // The store or the lock failing says which connection it failed for, so the edge can advise.
        err.connectionId ??= connection.id;
        if (err.failure && read?.account && !err.failure.account) {
          err.failure = { ...err.failure, account: read.account };
        }
      }
      throw err;
    }
  }

  private async redeemLocked(
    connection: Connection,
    grant: StoredGrant | undefined,
    scopes?: string[],
  ): Promise<{ tokens: TokenSet; tags: GrantTags }> {
    if (!grant) {
      throw consentRequired(
        connection.id,
        `Connection "${connection.id}" has never been connected.`,
        storedFailure(undefined),
      );
    }
    if (grant.tags.status === 'needs_consent') {
      // Refused without asking the provider: the stored tags say why.
      throw consentRequired(
        connection.id,
        `Connection "${connection.id}" needs a new consent${grant.tags.lastError ? ` (${grant.tags.lastError})` : ''}.`,
        storedFailure(grant.tags),
      );
    }
    const tokens = await this.refreshOrClassify(connection, grant, scopes);
    const tags: GrantTags = {
      ...grant.tags,
      refreshedAt: this.nowIso(),
      status: 'connected',
      ...NO_FAILURE,
    };
    await this.persist(connection.id, grant, tokens, tags);
    this.deps.events?.grantChanged(connection, grant.tags, tags);
    return { tokens, tags };
  }

  /** Under the lock: another instance may have written a moment ago, so read the store, not the read cache. */
  private readLatest(connectionId: string): Promise<StoredGrant | undefined> {
    if (this.deps.lock.crossInstance) this.deps.grants.invalidate(connectionId);
    return this.deps.grants.read(connectionId);
  }

  /**
   * The grant a consent or import replaces: the account it is pinned to, and what changed. A store
   * that cannot say refuses the consent (the account cannot be checked, and the write would fail too).
   */
  private async readBefore(connectionId: string): Promise<GrantTags | undefined> {
    return (await this.readLatest(connectionId))?.tags;
  }

  /** Stores the refresh token of a fresh consent after the account check; clears any `needs_consent`. */
  storeConsent(
    connection: Connection,
    tokens: TokenSet,
    account: AccountInfo,
    /** The signed-in person who began the consent (ADMIN_AUTH=easyauth), for the log. */
    by?: Person,
    /**
     * The consent began with `replace=true`: another account may take the connection over
     * (account pinning, docs/design.md, "Error codes": `account_mismatch`).
     */
    replace = false,
    /**
     * Invitations hook: runs under the lock after the account checks, just before the write, and may
     * refuse the consent by throwing (an invitation used or revoked meanwhile): nothing is stored then.
     * It uses the invitation up (`claimInvitation` in consent/complete-consent.ts).
     */
    beforeStore?: () => Promise<void>,
  ): Promise<GrantTags> {
    assertDelegated(connection);
    checkExpectedAccount(connection, account, this.deps.logger);
    if (!tokens.refreshToken) {
      throw new BrokerError(
        'consent_failed',
        'The provider returned no refresh token. Make sure the app may request offline_access, then consent again.',
        { connectionId: connection.id },
      );
    }
    const refreshToken = tokens.refreshToken;
    return this.deps.lock.withLock(connection.id, async () => {
      const before = await this.readBefore(connection.id);
      checkPinnedAccount(connection, before, account, replace, this.deps.logger);
      await beforeStore?.();
      const tags = this.consentTags(connection, tokens, account, this.hardExpiry(connection, tokens));
      await this.deps.grants.save(connection.id, refreshToken, tags);
      this.deps.events?.grantChanged(connection, before, tags);
      this.deps.logger.info('consent.stored', {
        connection: connection.id,
        account: account.account,
        tenant: account.tenant,
        by: by ? (by.name ?? by.id) : undefined,
        byId: by?.id,
      });
      return tags;
    });
  }

  /**
   * Migration path for tokens made by the old scripts: redeems the given refresh token once (proving it
   * works and learning the account), then stores the rotated one.
   */
  importRefreshToken(connection: Connection, refreshToken: string, replace = false): Promise<GrantTags> {
    assertDelegated(connection);
    return this.deps.lock.withLock(connection.id, async () => {
      const dialect = this.deps.dialect(connection);
      const tokens = await dialect.refresh({ refreshToken });
      const account = await dialect.accountOf(tokens);
      // An imported token is a consent too: someone else's mailbox is refused here as well.
      checkExpectedAccount(connection, account, this.deps.logger);
      const before = await this.readBefore(connection.id);
      checkPinnedAccount(connection, before, account, replace, this.deps.logger);
      // The original consent date is unknown, so no fixed lifetime is forecast.
      const tags = this.consentTags(connection, tokens, account, undefined);
      await this.deps.grants.save(connection.id, tokens.refreshToken ?? refreshToken, tags);
      this.deps.events?.grantChanged(connection, before, tags);
      this.deps.logger.info('grant.imported', { connection: connection.id, account: account.account });
      return tags;
    });
  }

  /** Account pinning against the stored grant, read from the store itself when another instance may have written it. */
  private async refreshOrClassify(
    connection: Connection,
    grant: StoredGrant,
    scopes?: string[],
  ): Promise<TokenSet> {
    try {
      return await this.deps.dialect(connection).refresh({ refreshToken: grant.refreshToken, scopes });
    } catch (err) {
      if (!isBrokerError(err)) throw err;
      // A scope the grant cannot give says nothing about the grant itself.
      if (err.code === 'invalid_request') throw err;
      // Nor does a consent or interaction error for another resource's scope: a caller asking for a
      // scope the grant was never consented for must not kill the grant for everyone else.
      if (err.code === 'consent_required' && !isOwnScopes(connection, scopes)) throw err;
      const failed = failureTags(err);
      if (err.code === 'consent_required') {
        const dead: GrantTags = { ...grant.tags, status: 'needs_consent', ...failed };
        await this.deps.grants.updateTags(grant, connection.id, dead);
        this.deps.events?.grantChanged(connection, grant.tags, dead);
        this.deps.logger.warn('grant.needs_consent', {
          connection: connection.id,
          lastError: failed.lastError,
        });
        throw new BrokerError('consent_required', err.message, {
          connectionId: connection.id,
          providerError: err.providerError,
          failure: err.failure,
          cause: err,
        });
      }
      if (err.code === 'client_misconfigured' && grant.tags.lastError !== failed.lastError) {
        const rejected: GrantTags = { ...grant.tags, ...failed };
        await this.deps.grants.updateTags(grant, connection.id, rejected);
        this.deps.events?.grantChanged(connection, grant.tags, rejected);
      }
      throw err;
    }
  }

  private async persist(
    connectionId: string,
    grant: StoredGrant,
    tokens: TokenSet,
    tags: GrantTags,
  ): Promise<void> {
    if (tokens.refreshToken && tokens.refreshToken !== grant.refreshToken) {
      await this.deps.grants.save(connectionId, tokens.refreshToken, tags);
    } else {
      // No rotation (ACS): the grant is still proven alive, so refreshedAt moves on.
      await this.deps.grants.updateTags(grant, connectionId, tags);
    }
  }

  /** The provider's `refresh_token_expires_in`, else the dialect's fixed lifetime (ACS), else none. */
  private hardExpiry(connection: Connection, tokens: TokenSet): string | undefined {
    const now = this.deps.clock.now();
    if (tokens.refreshTokenExpiresIn !== undefined) {
      return new Date(now + tokens.refreshTokenExpiresIn * 1000).toISOString();
    }
    return this.deps.dialect(connection).hardExpiry?.(now)?.toISOString();
  }

  /** The tags of a grant just consented to (or imported): connected, refreshed now. */
  private consentTags(
    connection: Connection,
    tokens: TokenSet,
    account: AccountInfo,
    hardExpiresAt: string | undefined,
  ): GrantTags {
    const now = this.nowIso();
    return {
      account: account.account,
      accountId: account.accountId,
      tenant: account.tenant,
      scopes: tokens.scope ?? connection.scopes.join(' '),
      consentedAt: now,
      refreshedAt: now,
      status: 'connected',
      hardExpiresAt,
    };
  }

  private nowIso(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}

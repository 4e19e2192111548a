import type { Person } from '../auth/person-auth.js';
import type { Clock } from '../clock.js';
import type { Connection } from '../config/connections.js';
import { BrokerError, isBrokerError } from '../errors.js';
import type { ConnectionEvents } from '../events/connection-events.js';
import { explain, remedyFor } from '../health/remedies.js';
import type { RefreshLock } from '../lock/lock.js';
import type { Logger } from '../logger.js';
import type { AccountInfo, ProviderDialect, TokenSet } from '../providers/provider.js';
import type { GrantStore, GrantTags, StoredGrant } from './grant-store.js';
import { isOwnScopes } from './scope-policy.js';

export type DialectLookup = (connection: Connection) => ProviderDialect;

export function consentRequired(connectionId: string, detail: string, cause?: BrokerError): BrokerError {
  return new BrokerError(
    'consent_required',
    `${detail} Open /api/start?connection=${connectionId} to consent.`,
    {
      connectionId,
      providerError: cause?.providerError,
      cause,
    },
  );
}

/** The short `lastError` tag of a failure: the provider's error and AADSTS number, or our code. */
export function errorTag(err: BrokerError): string {
  const p = err.providerError;
  if (!p) return err.code;
  return p.aadsts ? `${p.error} AADSTS${p.aadsts}` : p.error;
}

/**
 * The one gate every consent passes (both flows and `import`): anyone but `expectedAccount` (compared
 * case-insensitively) is refused, and nothing is stored.
 */
function checkExpectedAccount(connection: Connection, info: AccountInfo, logger: Logger): void {
  const expected = connection.expectedAccount?.toLowerCase();
  if (!expected) return;
  const account = info.account;
  // An e-mail the provider did not verify proves nothing: anyone can type one into their profile.
  if (info.emailVerified !== false && account?.toLowerCase() === expected) return;
  if (info.accountId?.toLowerCase() === expected) return;
  logger.warn('consent.account_mismatch', {
    connection: connection.id,
    account,
    expectedAccount: connection.expectedAccount,
  });
  throw new BrokerError(
    'account_mismatch',
    `Connection "${connection.id}" must be connected by ${connection.expectedAccount}, but ${account ?? 'an unknown account'}${info.emailVerified === false ? ' (an unverified e-mail)' : ''} signed in. Nothing was stored; sign in again with ${connection.expectedAccount}.`,
    { connectionId: connection.id },
  );
}

/** Whether a consent comes from the account a connection is already connected as (Entra: same `oid` and `tid`). */
function sameAccount(stored: GrantTags, info: AccountInfo): boolean {
  const eq = (a: string | undefined, b: string | undefined) => a?.toLowerCase() === b?.toLowerCase();
  // The provider named nobody (ACS when SharePoint's currentuser fails): consent still stands (DESIGN.md).
  if (info.accountId === undefined && info.account === undefined) return true;
  if (stored.tenant && info.tenant && !eq(stored.tenant, info.tenant)) return false;
  if (stored.accountId) return eq(stored.accountId, info.accountId);
  // Stored before ids were: the account name is what there is.
  if (stored.account) return eq(stored.account, info.account);
  return true;
}

/**
 * Account pinning (DESIGN.md `account_mismatch`): once connected, a consent by another account is
 * refused unless it began with `replace=true` (`/api/start?…&replace=true`, `broker import --replace`).
 */
function checkPinnedAccount(
  connection: Connection,
  stored: GrantTags | undefined,
  info: AccountInfo,
  replace: boolean,
  logger: Logger,
): void {
  if (!stored || replace || sameAccount(stored, info)) return;
  logger.warn('consent.account_mismatch', {
    connection: connection.id,
    account: info.account,
    connectedAccount: stored.account,
  });
  throw new BrokerError(
    'account_mismatch',
    `Connection "${connection.id}" is connected as ${stored.account ?? 'another account'}, but ${info.account ?? 'an unknown account'} signed in. Nothing was stored. To connect it to another account, start with /api/start?connection=${connection.id}&replace=true ("Change account" on the status page).`,
    { connectionId: connection.id },
  );
}

/**
 * Every use of a connection's refresh token goes through here, inside that connection's lock, on the
 * *latest* stored token: a provider with rotation and reuse detection revokes the whole grant when it
 * sees one refresh token twice (DESIGN.md, "Token vending").
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
      events?: ConnectionEvents;
      /** `BROKER_PUBLIC_URL`, for the links in the remedies attached to thrown errors. */
      publicUrl?: string;
    },
  ) {}

  /**
   * Redeems the stored refresh token (for `scopes`, or the connection's own) and stores the rotated one
   * first. A failure carries its `remedy`, naming the connected account.
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
      const context = { connection, publicUrl: this.deps.publicUrl ?? '', account: read?.account };
      // Refused without asking the provider (never connected, or stored dead): the stored tags say why.
      if (isBrokerError(err, 'consent_required') && !err.providerError) {
        err.remedy ??=
          remedyFor({ tags: read, deadlines: [] }, context, { now: 0, warnBeforeMs: 0 }) ?? undefined;
      }
      throw explain(err, context);
    }
  }

  private async redeemLocked(
    connection: Connection,
    grant: StoredGrant | undefined,
    scopes?: string[],
  ): Promise<{ tokens: TokenSet; tags: GrantTags }> {
    if (!grant)
      throw consentRequired(connection.id, `Connection "${connection.id}" has never been connected.`);
    if (grant.tags.status === 'needs_consent') {
      throw consentRequired(
        connection.id,
        `Connection "${connection.id}" needs a new consent${grant.tags.lastError ? ` (${grant.tags.lastError})` : ''}.`,
      );
    }
    const tokens = await this.refreshOrClassify(connection, grant, scopes);
    const tags: GrantTags = {
      ...grant.tags,
      refreshedAt: this.nowIso(),
      status: 'connected',
      lastError: undefined,
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
    /** The consent began with `replace=true`: another account may take the connection over. */
    replace = false,
    /**
     * Invitations hook: runs under the lock after the account checks, just before the write, and may
     * refuse the consent by throwing (an invitation used or revoked meanwhile): nothing is stored then.
     */
    beforeStore?: () => Promise<void>,
  ): Promise<GrantTags> {
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
      if (err.code === 'consent_required') {
        const dead: GrantTags = { ...grant.tags, status: 'needs_consent', lastError: errorTag(err) };
        await this.deps.grants.updateTags(grant, connection.id, dead);
        this.deps.events?.grantChanged(connection, grant.tags, dead);
        this.deps.logger.warn('grant.needs_consent', { connection: connection.id, lastError: errorTag(err) });
        throw new BrokerError('consent_required', err.message, {
          connectionId: connection.id,
          providerError: err.providerError,
          cause: err,
        });
      }
      if (err.code === 'client_misconfigured' && grant.tags.lastError !== errorTag(err)) {
        const rejected: GrantTags = { ...grant.tags, lastError: errorTag(err) };
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

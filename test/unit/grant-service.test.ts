import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../src/lib/errors.js';
import { explainError } from '../../src/lib/health/remedies.js';
import { refreshTokenSecretName } from '../../src/lib/store/secret-store.js';
import type { GrantService } from '../../src/lib/tokens/grant-service.js';
import { testConnection } from '../fakes/connections.js';
import { providerError } from '../fakes/fake-provider.js';
import { DAY_MS, services, settle } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

const mail = testConnection('mail');
const support = testConnection('support', { expectedAccount: 'Support@Contoso.com' });

/** `storeConsent` refuses by throwing at once (it is not async): as a promise, like its callers see it. */
const storeConsent = async (grants: GrantService, ...args: Parameters<GrantService['storeConsent']>) =>
  grants.storeConsent(...args);

/** GrantService: every use of a refresh token, under the connection's lock, on the latest stored one. */
describe('GrantService', () => {
  const setup = async () => {
    const world = services([mail, support]);
    await world.seedGrant('mail', 'rt-seed');
    const versions = () => world.store.listVersions(refreshTokenSecretName('mail'));
    /** A redeem of `mail` the provider answers with `error`: what it throws. */
    const failedRedeem = (error: BrokerError, scopes?: string[]) => {
      world.provider.answer('mail', error);
      return rejection(world.grants.redeem(mail, scopes));
    };
    return { ...world, versions, failedRedeem };
  };

  it('a store failure names its connection, so the edge advises wait on /api/token', async () => {
    const world = services([mail]);
    const down = new BrokerError('upstream_unavailable', 'Key Vault is down.', { retryAfter: 7 });
    world.store.getSecret = () => Promise.reject(down);
    const err = await rejection(world.grants.redeem(mail));
    expect(err).toBe(down);
    expect(err.connectionId).toBe('mail');
    explainError(err, world.catalog, 'https://broker.example');
    expect(err.remedy?.kind).toBe('wait');
  });

  it('redeems the latest stored refresh token and stores the rotated one before it returns', async () => {
    const { grants, provider, storedGrant, clock, store } = await setup();
    await grants.redeem(mail);
    expect((await storedGrant('mail'))?.value).toBe('rt-1');
    await grants.redeem(mail);
    expect((await storedGrant('mail'))?.value).toBe('rt-2');
    // Someone else (the CLI, another instance) wrote a newer one: the next redeem uses it.
    clock.advance(60_000);
    await store.setSecret(refreshTokenSecretName('mail'), 'rt-imported', { tags: { status: 'connected' } });
    await grants.redeem(mail);
    expect(provider.refreshes.map((r) => r.refreshToken)).toEqual(['rt-seed', 'rt-1', 'rt-imported']);
    expect((await storedGrant('mail'))?.value).toBe('rt-3');
  });

  it('never presents one refresh token twice, however many redeems run at once', async () => {
    const { grants, provider, storedGrant } = await setup();
    const release = provider.hold();
    const redeems = [grants.redeem(mail), grants.redeem(mail, ['a']), grants.redeem(mail, ['b'])];
    await settle();
    expect(provider.inFlight).toBe(1);
    release();
    await Promise.all(redeems);
    expect(provider.reused).toEqual([]);
    expect(provider.refreshes.map((r) => r.refreshToken)).toEqual(['rt-seed', 'rt-1', 'rt-2']);
    expect((await storedGrant('mail'))?.value).toBe('rt-3');
  });

  it('answers consent_required for a grant stored as needs_consent, without asking the provider', async () => {
    const { grants, provider, seedGrant } = await setup();
    await seedGrant('mail', 'rt-dead', { status: 'needs_consent', lastError: 'invalid_grant AADSTS700082' });
    const err = await rejection(grants.redeem(mail));
    expect(err.code).toBe('consent_required');
    expect(err.message).toContain('invalid_grant AADSTS700082');
    expect(err.message).toContain('/api/start?connection=mail');
    expect(provider.refreshes).toHaveLength(0);
  });

  it('marks the grant needs_consent with the provider error when the provider says it is dead', async () => {
    const { grants, provider, storedGrant, failedRedeem } = await setup();
    const err = await failedRedeem(providerError('consent_required', 'invalid_grant', 700082));
    expect(err.code).toBe('consent_required');
    expect(err.providerError).toMatchObject({ error: 'invalid_grant', aadsts: 700082 });
    const stored = await storedGrant('mail');
    expect(stored?.value).toBe('rt-seed');
    expect(stored?.tags).toMatchObject({ status: 'needs_consent', lastError: 'invalid_grant AADSTS700082' });
    // From now on the provider is not asked.
    await rejection(grants.redeem(mail));
    expect(provider.refreshes).toHaveLength(1);
  });

  it('records a rejected client as lastError and keeps the grant connected', async () => {
    const { grants, storedGrant, failedRedeem } = await setup();
    const err = await failedRedeem(providerError('client_misconfigured', 'invalid_client', 7000222));
    expect(err.code).toBe('client_misconfigured');
    expect((await storedGrant('mail'))?.tags).toMatchObject({
      status: 'connected',
      lastError: 'invalid_client AADSTS7000222',
    });
    // The next success clears it.
    await grants.redeem(mail);
    expect((await storedGrant('mail'))?.tags.lastError).toBeUndefined();
  });

  it('leaves the grant alone when the provider refuses a scope (invalid_request)', async () => {
    const { storedGrant, versions, failedRedeem } = await setup();
    const before = await storedGrant('mail');
    const err = await failedRedeem(providerError('invalid_request', 'invalid_scope', 70011), [
      'https://example.com/nope',
    ]);
    expect(err.code).toBe('invalid_request');
    expect(await storedGrant('mail')).toEqual(before);
    expect(await versions()).toHaveLength(1);
  });

  it('moves refreshedAt on when the provider returns no new refresh token (ACS), keeping the value', async () => {
    const { grants, provider, storedGrant, versions, clock } = await setup();
    clock.advance(3 * DAY_MS);
    provider.answer('mail', { refreshToken: undefined });
    const { tags } = await grants.redeem(mail);
    const stored = await storedGrant('mail');
    expect(stored?.value).toBe('rt-seed');
    expect(stored?.tags.refreshedAt).toBe(new Date(clock.now()).toISOString());
    expect(tags.refreshedAt).toBe(stored?.tags.refreshedAt);
    expect(await versions()).toHaveLength(1);
  });

  describe('storeConsent', () => {
    it('stores the grant as connected, clearing an earlier needs_consent', async () => {
      const { grants, storedGrant, seedGrant, clock, provider } = await setup();
      await seedGrant('mail', 'rt-dead', { status: 'needs_consent', lastError: 'invalid_grant' });
      clock.advance(DAY_MS);
      await grants.storeConsent(mail, provider.mint(), { account: 'ana@contoso.com', tenant: 't' });
      const stored = await storedGrant('mail');
      expect(stored?.value).toBe('rt-1');
      expect(stored?.tags).toEqual({
        status: 'connected',
        account: 'ana@contoso.com',
        tenant: 't',
        scopes: 'offline_access openid profile Mail.Read',
        consentedAt: new Date(clock.now()).toISOString(),
        refreshedAt: new Date(clock.now()).toISOString(),
      });
    });

    it('refuses an account other than expectedAccount and stores nothing', async () => {
      const { grants, storedGrant, provider, logs } = await setup();
      const err = await rejection(
        storeConsent(grants, support, provider.mint(), { account: 'ana@contoso.com' }),
      );
      expect(err.code).toBe('account_mismatch');
      expect(err.message).toContain('Support@Contoso.com');
      expect(await storedGrant('support')).toBeUndefined();
      expect(logs.map((l) => l.event)).toContain('consent.account_mismatch');
    });

    it('compares expectedAccount case-insensitively', async () => {
      const { grants, storedGrant, provider } = await setup();
      await grants.storeConsent(support, provider.mint(), { account: 'support@contoso.COM' });
      expect((await storedGrant('support'))?.tags.account).toBe('support@contoso.COM');
    });

    it('refuses a token response without a refresh token', async () => {
      const { grants, storedGrant, provider } = await setup();
      const tokens = { ...provider.mint(), refreshToken: undefined };
      const err = await rejection(storeConsent(grants, support, tokens, { account: 'support@contoso.com' }));
      expect(err.code).toBe('consent_failed');
      expect(err.message).toContain('offline_access');
      expect(await storedGrant('support')).toBeUndefined();
    });

    it("forecasts the hard expiry from refresh_token_expires_in, else the dialect's fixed lifetime", async () => {
      const { grants, storedGrant, provider, clock } = await setup();
      // The same account as the seeded grant's (another one would be refused: account pinning).
      const ana = { account: 'ana@contoso.com' };
      await grants.storeConsent(mail, { ...provider.mint(), refreshTokenExpiresIn: 3600 }, ana);
      expect((await storedGrant('mail'))?.tags.hardExpiresAt).toBe(
        new Date(clock.now() + 3_600_000).toISOString(),
      );
      provider.lifetimeMs = 180 * DAY_MS;
      await grants.storeConsent(mail, provider.mint(), ana);
      expect((await storedGrant('mail'))?.tags.hardExpiresAt).toBe(
        new Date(clock.now() + 180 * DAY_MS).toISOString(),
      );
    });
  });

  describe('importRefreshToken', () => {
    it('redeems the given token once, learns the account and stores the rotated token', async () => {
      const { grants, storedGrant, provider } = await setup();
      provider.account = { account: 'support@contoso.com', tenant: 'contoso' };
      const tags = await grants.importRefreshToken(support, 'rt-from-old-script');
      expect(provider.refreshes).toEqual([{ connection: 'support', refreshToken: 'rt-from-old-script' }]);
      const stored = await storedGrant('support');
      expect(stored?.value).toBe('rt-1');
      expect(stored?.tags).toMatchObject({
        status: 'connected',
        account: 'support@contoso.com',
        tenant: 'contoso',
      });
      expect(tags.hardExpiresAt).toBeUndefined();
    });

    it("refuses someone else's token and stores nothing", async () => {
      const { grants, storedGrant } = await setup();
      const err = await rejection(grants.importRefreshToken(support, 'rt-from-old-script'));
      expect(err.code).toBe('account_mismatch');
      expect(await storedGrant('support')).toBeUndefined();
    });

    it('keeps the given token when the provider does not rotate it', async () => {
      const { grants, storedGrant, provider } = await setup();
      provider.answer('mail', { refreshToken: undefined });
      await grants.importRefreshToken(mail, 'rt-long-lived');
      expect((await storedGrant('mail'))?.value).toBe('rt-long-lived');
    });
  });
});

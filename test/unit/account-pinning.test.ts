import { describe, expect, it } from 'vitest';
import { refreshTokenSecretName } from '../../src/lib/store/secret-store.js';
import type { GrantService } from '../../src/lib/tokens/grant-service.js';
import { statusPage } from '../../src/views/status-page.js';
import { testConnection } from '../fakes/connections.js';
import { services } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

const mail = testConnection('mail');
const outlook = testConnection('outlook', {
  flow: 'device_code',
  credential: undefined,
  tenant: 'consumers',
});
const pinned = testConnection('pinned', { expectedAccount: 'ana@example.com' });

const ANA = { account: 'ana@contoso.com', accountId: 'oid-ana', tenant: 'tid-1' };
const BOB = { account: 'bob@contoso.com', accountId: 'oid-bob', tenant: 'tid-1' };

/** `storeConsent` refuses by throwing at once (it is not async): as a promise, like its callers see it. */
const storeConsent = async (grants: GrantService, ...args: Parameters<GrantService['storeConsent']>) =>
  grants.storeConsent(...args);

/** DESIGN.md `account_mismatch`: once connected, another account needs `replace=true`. */
describe('account pinning', () => {
  const setup = async () => {
    const world = services([mail, outlook, pinned]);
    await world.grants.storeConsent(mail, world.provider.mint(), ANA);
    const versions = () => world.store.listVersions(refreshTokenSecretName('mail'));
    return { ...world, versions };
  };

  it('stores the account id (Entra oid, oauth2 sub) as a tag', async () => {
    const { storedGrant } = await setup();
    expect((await storedGrant('mail'))?.tags).toMatchObject({ account: ANA.account, accountId: 'oid-ana' });
  });

  it('refuses a consent by another oid, or the same oid in another tenant, and stores nothing', async () => {
    const { grants, provider, storedGrant, versions, logs } = await setup();
    const before = await storedGrant('mail');
    for (const other of [BOB, { ...ANA, tenant: 'tid-2' }, { ...BOB, account: ANA.account }]) {
      const err = await rejection(grants.storeConsent(mail, provider.mint(), other));
      expect(err.code).toBe('account_mismatch');
      expect(err.message).toContain('replace=true');
    }
    expect(await storedGrant('mail')).toEqual(before);
    expect(await versions()).toHaveLength(1);
    expect(logs.filter((l) => l.event === 'consent.account_mismatch')).toHaveLength(3);
  });

  it('accepts the same account again (the name may change, the oid may not)', async () => {
    const { grants, provider, versions } = await setup();
    await grants.storeConsent(mail, provider.mint(), { ...ANA, account: 'ana.renamed@contoso.com' });
    expect(await versions()).toHaveLength(2);
  });

  it('lets another account in when the consent began with replace=true', async () => {
    const { grants, provider, storedGrant } = await setup();
    await grants.storeConsent(mail, provider.mint(), BOB, undefined, true);
    expect((await storedGrant('mail'))?.tags).toMatchObject({ account: BOB.account, accountId: 'oid-bob' });
  });

  it('pins grants stored before account ids by their account name', async () => {
    const { grants, provider, seedGrant } = await setup();
    await seedGrant('mail', 'rt-old', { account: 'ana@contoso.com' });
    expect((await rejection(grants.storeConsent(mail, provider.mint(), BOB))).code).toBe('account_mismatch');
    await grants.storeConsent(mail, provider.mint(), { ...ANA, account: 'ANA@contoso.com' });
  });

  it('broker import: refuses another account unless --replace', async () => {
    const { grants, provider, storedGrant } = await setup();
    provider.account = BOB;
    const before = await storedGrant('mail');
    expect((await rejection(grants.importRefreshToken(mail, 'rt-bob'))).code).toBe('account_mismatch');
    expect(await storedGrant('mail')).toEqual(before);
    await grants.importRefreshToken(mail, 'rt-bob2', true);
    expect((await storedGrant('mail'))?.tags.accountId).toBe('oid-bob');
  });

  it('the authorization code flow carries replace=true in its sealed state', async () => {
    const { consent, provider, storedGrant } = await setup();
    provider.account = BOB;
    const callback = async (replace: boolean) => {
      const started = await consent.start('mail', undefined, { replace });
      if (started.flow !== 'authorization_code') throw new Error('expected the authorization code flow');
      const state = new URL(started.location).searchParams.get('state') as string;
      return consent.callback({ code: 'c', state }, new Map([[started.cookie.name, started.cookie.value]]));
    };
    expect((await rejection(callback(false))).code).toBe('account_mismatch');
    expect((await storedGrant('mail'))?.tags.account).toBe(ANA.account);
    await callback(true);
    expect((await storedGrant('mail'))?.tags.account).toBe(BOB.account);
  });

  it('the device code flow carries replace=true in its sealed attempt', async () => {
    const { consent, grants, provider, storedGrant, clock } = await setup();
    await grants.storeConsent(outlook, provider.mint(), ANA);
    provider.account = BOB;
    const poll = async (replace: boolean) => {
      const started = await consent.device.start('outlook', undefined, { replace });
      clock.advance(started.interval * 1000);
      provider.answerPoll('outlook', { status: 'tokens', tokens: provider.mint() });
      return consent.device.poll('outlook', started.attempt);
    };
    expect((await rejection(poll(false))).code).toBe('account_mismatch');
    expect((await storedGrant('outlook'))?.tags.account).toBe(ANA.account);
    await poll(true);
    expect((await storedGrant('outlook'))?.tags.account).toBe(BOB.account);
  });

  it('never matches expectedAccount with an e-mail the provider did not verify', async () => {
    const { grants, provider, storedGrant } = await setup();
    const unverified = { account: 'ana@example.com', accountId: 'sub-1', emailVerified: false };
    expect((await rejection(storeConsent(grants, pinned, provider.mint(), unverified))).code).toBe(
      'account_mismatch',
    );
    expect(await storedGrant('pinned')).toBeUndefined();
    await grants.storeConsent(pinned, provider.mint(), { ...unverified, emailVerified: true });
    expect((await storedGrant('pinned'))?.tags.account).toBe('ana@example.com');
  });

  it('the status page offers "Change account" with replace=true for a connected connection', async () => {
    const { status } = await setup();
    const page = statusPage(await status.health(), { key: undefined, now: Date.now() });
    expect(String(page.body)).toContain('/api/start?connection=mail&#38;replace=true">Change account');
    expect(String(page.body)).not.toContain('connection=outlook&#38;replace=true');
  });
});

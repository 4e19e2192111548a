import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import type { KeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import type { StatusBody, TokenBody } from '../support/http-types.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const HOUR = 60 * 60 * 1000;
const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const POP = 'https://outlook.office.com/POP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';

/**
 * The broker on Key Vault: `KEY_VAULT_URL` points at the Key Vault simulator (HTTPS, 127.0.0.1), the
 * broker's `KeyVaultSecretStore` drives it with the real `SecretClient`. Consent → token → rotation,
 * the Key Vault calls each costs, and what Key Vault faults do to `/api/token`.
 */
describe('the broker on Key Vault', () => {
  let stack: Stack;
  let kv: KeyVaultSimulator;
  const token = (id: string, scope?: string) =>
    stack.api(`/api/token?connection=${id}${scope ? `&scope=${encodeURIComponent(scope)}` : ''}`);
  const tokenJson = async (id: string, scope?: string) => {
    const res = await token(id, scope);
    expect(res.status).toBe(200);
    return (await res.json()) as TokenBody;
  };
  const refreshes = () => stack.sim.stats.byGrant.refresh_token ?? 0;
  /** A new broker process: no access token, refresh token or client secret cached. */
  const freshProcess = () => stack.restart();
  /** Moves the broker's clock past the refresh token read cache (2 s). */
  const grantCacheExpires = async () => stack.clock.advance(2100);
  /** The newest refresh token in the vault works, and no refresh token was ever redeemed twice. */
  const nothingLost = async (id: string) => {
    stack.local.broker.tokens.invalidate(id);
    await tokenJson(id);
    const versions = kv.versionsOf(`rt-${id}`)!;
    const newest = versions[versions.length - 1]!.value;
    expect(stack.sim.issuedSecrets()).toContain(newest);
    expect(stack.sim.stats.refreshRedemptions.get(newest)).toBeUndefined();
    expect(stack.sim.stats.reuseDetected).toBe(0);
  };

  beforeAll(async () => {
    stack = await startStack({ store: 'keyvault', connections: { support: {}, uploader: {}, mailbox: {} } });
    kv = stack.vault!.sim;
  });
  afterAll(() => stack.close());
  afterEach(async () => {
    kv.clearFaults();
    kv.allowAccess();
    expect(await findLeaks(stack)).toEqual([]);
    expect(stack.logs.join('\n')).not.toContain(kv.accessToken);
  });

  it('runs on the Key Vault store chosen by KEY_VAULT_URL', () => {
    expect(stack.env.KEY_VAULT_URL).toBe(stack.vault!.url);
    expect(stack.local.broker.store.kind).toBe('keyvault');
  });

  it('consent stores rt-{id} in the vault: the refresh token alone as the value, metadata in tags', async () => {
    let before = kv.snapshot();
    expect(
      (await consent(stack.url, stack.local.functionKey, 'support', { account: 'support@contoso.com' }))
        .status,
    ).toBe(200);
    // First consent of a process: seal key (read, none yet, create, read back), client secret, rt-support
    // read before it is written (the account it is pinned to, and whether the consent is a recovery).
    expect(kv.since(before)).toEqual({ get: 4, set: 2 });

    const versions = kv.versionsOf('rt-support')!;
    expect(versions).toHaveLength(1);
    const stored = versions[0]!;
    expect(stack.sim.issuedSecrets()).toContain(stored.value);
    expect(stored.tags).toMatchObject({ account: 'support@contoso.com', status: 'connected' });
    expect(Object.keys(stored.tags).sort()).toEqual(
      ['account', 'accountId', 'consentedAt', 'refreshedAt', 'scopes', 'status', 'tenant'].sort(),
    );
    expect(kv.versionsOf('broker-seal-key')).toHaveLength(1);

    before = kv.snapshot();
    for (const id of ['uploader', 'mailbox']) {
      expect(
        (await consent(stack.url, stack.local.functionKey, id, { account: `${id}@contoso.com` })).status,
      ).toBe(200);
    }
    // Every later consent: one read of the grant it replaces (pin and recovery) and one write each; the client secret
    // they share is already cached by name.
    expect(kv.since(before)).toEqual({ get: 2, set: 2 });
  });

  it('a cache hit on /api/token makes no Key Vault call', async () => {
    const first = await tokenJson('support');
    const before = kv.snapshot();
    for (let i = 0; i < 20; i++) expect((await tokenJson('support')).access_token).toBe(first.access_token);
    expect(kv.since(before)).toEqual({});
  });

  it('a refresh makes one read and one write (plus the client secret once per process)', async () => {
    await freshProcess();
    let before = kv.snapshot();
    await tokenJson('support');
    expect(kv.since(before)).toEqual({ get: 2, set: 1 });
    // Right after a write by this process the refresh token is known: no read.
    stack.local.broker.tokens.invalidate('support');
    before = kv.snapshot();
    await tokenJson('support');
    expect(kv.since(before)).toEqual({ set: 1 });
    await grantCacheExpires();
    stack.local.broker.tokens.invalidate('support');
    before = kv.snapshot();
    await tokenJson('support');
    expect(kv.since(before)).toEqual({ get: 1, set: 1 });
    const versions = kv.versionsOf('rt-support')!;
    expect(stack.sim.stats.refreshRedemptions.get(versions[versions.length - 1]!.value)).toBeUndefined();
  });

  it('a burst of refreshes for three scopes of one connection reads the refresh token once', async () => {
    await tokenJson('uploader');
    await grantCacheExpires();
    const before = kv.snapshot();
    const redeemed = refreshes();
    const bodies = await Promise.all([IMAP, POP, SMTP].map((scope) => tokenJson('uploader', scope)));
    expect(new Set(bodies.map((b) => b.access_token)).size).toBe(3);
    expect(refreshes() - redeemed).toBe(3);
    expect(kv.since(before)).toEqual({ get: 1, set: 3 });
    expect(stack.sim.stats.reuseDetected).toBe(0);
  });

  it('/api/status makes one list call', async () => {
    const before = kv.snapshot();
    const res = await stack.api('/api/status');
    expect(res.status).toBe(200);
    const body = (await res.json()) as StatusBody;
    expect(body.connections.map((c) => c.status)).toEqual(['connected', 'connected', 'connected']);
    expect(kv.since(before)).toEqual({ list: 1 });
  });

  it('the rotation pass lists once, then reads and writes each due connection; the vault keeps every version', async () => {
    stack.clock.advance(25 * HOUR);
    await tokenJson('mailbox'); // refreshed now: not due
    await freshProcess();
    const versions = kv.versionsOf('rt-support')!.length;
    const before = kv.snapshot();
    const results = await stack.local.broker.rotation.rotationPass();
    expect(results.map((r) => [r.connection, r.outcome])).toEqual([
      ['support', 'rotated'],
      ['uploader', 'rotated'],
      ['mailbox', 'skipped'],
    ]);
    // A new process: the client secret the connections share is read once (then cached for 5 minutes).
    expect(kv.since(before)).toEqual({ list: 1, get: 3, set: 2 });
    const history = kv.versionsOf('rt-support')!;
    expect(history).toHaveLength(versions + 1);
    expect(new Set(history.map((v) => v.value)).size).toBe(history.length);
    await nothingLost('support');
  });

  describe('Key Vault faults', () => {
    it('an outage while an access token is cached does not stop /api/token from serving it', async () => {
      const cached = await tokenJson('support');
      kv.failNext('*', { status: 500 }, 10_000);
      const before = kv.snapshot();
      for (let i = 0; i < 5; i++) expect((await tokenJson('support')).access_token).toBe(cached.access_token);
      expect(kv.since(before)).toEqual({});
      // Inside the refresh-ahead window: still served while the background refresh fails.
      stack.clock.advance((cached.expires_in - 4 * 60) * 1000);
      expect((await tokenJson('support')).access_token).toBe(cached.access_token);
      await expect.poll(() => stack.logs.some((l) => l.includes('token.refresh_ahead_failed'))).toBe(true);
      expect((await tokenJson('support')).access_token).toBe(cached.access_token);
      kv.clearFaults();
      await nothingLost('support');
    });

    it('a 429 storm answers 503 upstream_unavailable with the vault Retry-After, within seconds', async () => {
      await freshProcess();
      const redeemed = refreshes();
      kv.failNext('*', { status: 429, headers: { 'Retry-After': '1' } }, 10_000);
      let started = Date.now();
      let res = await token('support');
      expect(Date.now() - started).toBeLessThan(5000);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ code: 'upstream_unavailable' });

      kv.clearFaults();
      kv.failNext('*', { status: 429, headers: { 'Retry-After': '30' } }, 10_000);
      started = Date.now();
      res = await token('support');
      expect(Date.now() - started).toBeLessThan(1000);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
      // The refresh token was never read, so never redeemed.
      expect(refreshes()).toBe(redeemed);
      kv.clearFaults();
      await nothingLost('support');
    });

    it('500s: retried away by the SDK policy, or 503 once the retries are spent', async () => {
      await freshProcess();
      kv.failNext('get', { status: 500 }, 2);
      let before = kv.snapshot();
      await tokenJson('support');
      // Two 500s retried, then rt-support and the client secret.
      expect(kv.since(before)).toEqual({ get: 4, set: 1 });

      await freshProcess();
      kv.failNext('get', { status: 503 }, 10);
      before = kv.snapshot();
      const res = await token('support');
      expect(res.status).toBe(503);
      expect(kv.since(before)).toEqual({ get: 4 });
      kv.clearFaults();
      await nothingLost('support');
    });

    it('a write that fails after the provider rotated keeps the new refresh token; nothing is redeemed twice', async () => {
      await tokenJson('support');
      stack.local.broker.tokens.invalidate('support');
      const stored = kv.versionsOf('rt-support')!.length;
      kv.failNext('set', { status: 500 }, 10);
      const res = await token('support');
      expect(res.status).toBe(503);
      expect(kv.versionsOf('rt-support')).toHaveLength(stored);
      kv.clearFaults();
      await nothingLost('support');
      expect(kv.versionsOf('rt-support')).toHaveLength(stored + 1);
    });

    it('a hung connection answers 503 after the attempt timeout', async () => {
      await freshProcess();
      kv.hangNext('get');
      const started = Date.now();
      const res = await token('support');
      expect(Date.now() - started).toBeLessThan(2500);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/did not answer in time/);
      await nothingLost('support');
    });

    it('403: /api/token and /api/status name the vault and the role to grant', async () => {
      await freshProcess();
      kv.denyAccess();
      for (const res of [await token('support'), await stack.api('/api/status')]) {
        expect(res.status).toBe(503);
        const body = (await res.json()) as { code: string; detail: string };
        expect(body.code).toBe('upstream_unavailable');
        expect(body.detail).toContain(`Key Vault ${stack.vault!.url} refused access (403, ForbiddenByRbac)`);
        expect(body.detail).toContain("'Key Vault Secrets Officer' role");
      }
      kv.allowAccess();
      expect((await stack.api('/api/status')).status).toBe(200);
      await nothingLost('support');
    });
  });
});

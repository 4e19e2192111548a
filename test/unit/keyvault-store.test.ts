import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { BrokerError, ConfigError, KeyVaultAccessError } from '../../src/lib/errors.js';
import {
  KEY_VAULT_ROLE,
  KeyVaultSecretStore,
  type KeyVaultSecretStoreOptions,
} from '../../src/lib/store/keyvault-store.js';
import { openStore } from '../../src/lib/store/open-store.js';
import { GrantStore } from '../../src/lib/tokens/grant-store.js';
import { type KeyVaultFake, startKeyVaultSimulator, TestCredential } from '../fakes/keyvault-simulator.js';
import { rejection } from '../support/errors.js';
import { freePort } from '../support/net.js';

const VALUE = 'refresh-token-value-that-must-never-leak';
const TIMING: KeyVaultSecretStoreOptions = {
  attemptTimeoutMs: 600,
  deadlineMs: 2500,
  retryOptions: { maxRetries: 3, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
};

let vault: KeyVaultFake;
let store: KeyVaultSecretStore;
/** Every error a test saw; none may carry a value or the vault's bearer token. */
const seen: unknown[] = [];

async function failure(promise: Promise<unknown>): Promise<BrokerError> {
  const err = await rejection(promise);
  seen.push(err);
  return err;
}

beforeAll(async () => {
  vault = await startKeyVaultSimulator();
  store = await vault.createStore(TIMING);
});
afterAll(async () => {
  for (const err of seen) {
    const text = `${String(err)} ${JSON.stringify(err)} ${inspect(err, { depth: 5 })}`;
    expect(text).not.toContain(VALUE);
    expect(text).not.toContain(vault.sim.accessToken);
  }
  await vault.close();
});
beforeEach(async () => {
  vault.sim.reset();
  await store.setSecret('rt-support', VALUE, { tags: { status: 'connected' } });
  vault.sim.resetStats();
});

describe('KeyVaultSecretStore against the simulator', () => {
  it('answers the challenge once per client with the vault scope and tenant, and sends api-version', async () => {
    const fresh = await vault.createStore(TIMING, new TestCredential(vault.sim.accessToken));
    const credential = new TestCredential(vault.sim.accessToken);
    const other = await vault.createStore(TIMING, credential);
    expect((await other.getSecret('rt-support'))?.value).toBe(VALUE);
    expect((await other.getSecret('rt-support'))?.value).toBe(VALUE);
    expect(vault.sim.stats.challenges).toBe(1);
    expect(vault.sim.calls('get')).toBe(2);
    expect(credential.requests[0]).toEqual({
      scopes: ['https://vault.azure.net/.default'],
      tenantId: vault.sim.tenantId,
    });
    expect([...vault.sim.stats.apiVersions]).toEqual(['2025-07-01']);
    expect(fresh.kind).toBe('keyvault');
    expect(fresh.vaultUrl).toBe(vault.url);
  });

  it('reads a missing secret or version as undefined with one call each', async () => {
    expect(await store.getSecret('rt-none')).toBeUndefined();
    expect(await store.getSecret('rt-support', 'a'.repeat(32))).toBeUndefined();
    expect(vault.sim.snapshot()).toEqual({ get: 2 });
  });

  it('checks names and tags before calling the vault', async () => {
    await expect(store.setSecret('bad_name', VALUE)).rejects.toThrow(/invalid secret name/);
    const many = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.setSecret('rt-a', VALUE, { tags: many })).rejects.toThrow(/at most 15/);
    expect(await store.getSecret('rt-a', 'not/a/version')).toBeUndefined();
    expect(vault.sim.calls()).toBe(0);
  });

  it('retries 429 with a short Retry-After and 500s (the SDK policy), then succeeds', async () => {
    vault.sim.failNext('get', { status: 429, headers: { 'Retry-After': '1' } });
    vault.sim.failNext('get', { status: 500 }, 2);
    const started = Date.now();
    expect((await store.getSecret('rt-support'))?.value).toBe(VALUE);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(vault.sim.calls('get')).toBe(4);
  });

  it('a 429 storm ends within the deadline as upstream_unavailable with the vault Retry-After', async () => {
    vault.sim.failNext('*', { status: 429, headers: { 'Retry-After': '1' } }, 100);
    const started = Date.now();
    const err = await failure(store.getSecret('rt-support'));
    expect(Date.now() - started).toBeLessThan(TIMING.deadlineMs! + 500);
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryAfter).toBe(1);
    expect(err.message).toContain(vault.url);
    expect(vault.sim.calls('get')).toBeLessThanOrEqual(4);
  });

  it('a Retry-After longer than the deadline fails at once, passing the wait on', async () => {
    vault.sim.failNext('set', { status: 429, headers: { 'Retry-After': '120' } }, 10);
    const started = Date.now();
    const err = await failure(store.setSecret('rt-support', VALUE));
    expect(Date.now() - started).toBeLessThan(500);
    expect(err).toMatchObject({ code: 'upstream_unavailable', retryAfter: 120 });
    expect(err.message).toMatch(/throttling requests \(429\) while writing secret rt-support/);
    expect(vault.sim.calls('set')).toBe(1);
  });

  it('500s past the retries → upstream_unavailable after 1 + maxRetries calls', async () => {
    vault.sim.failNext('list', { status: 500 }, 10);
    const err = await failure(store.listSecrets());
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toMatch(/answered 500, InternalServerError while listing secrets, after retries/);
    expect(vault.sim.calls('list')).toBe(4);
  });

  it('a hung connection times out per attempt and is not waited for again', async () => {
    vault.sim.hangNext('get');
    const started = Date.now();
    const err = await failure(store.getSecret('rt-support'));
    expect(Date.now() - started).toBeLessThan(TIMING.attemptTimeoutMs! + 400);
    expect(err.message).toMatch(/did not answer in time while reading secret rt-support/);
    expect((await store.getSecret('rt-support'))?.value).toBe(VALUE);
  });

  it('403 names the vault and the role to grant, and is not retried', async () => {
    vault.sim.denyAccess('ForbiddenByRbac');
    for (const op of [store.getSecret('rt-support'), store.listSecrets(), store.setSecret('rt-x', VALUE)]) {
      const err = await failure(op);
      expect(err).toBeInstanceOf(KeyVaultAccessError);
      expect(err.code).toBe('upstream_unavailable');
      expect(err.message).toContain(`Key Vault ${vault.url} refused access (403, ForbiddenByRbac)`);
      expect(err.message).toContain(`'${KEY_VAULT_ROLE}'`);
    }
    expect(vault.sim.snapshot()).toEqual({ get: 1, list: 1, set: 1 });
    vault.sim.allowAccess();
    expect((await store.getSecret('rt-support'))?.value).toBe(VALUE);
  });

  it('401 for a token the vault does not accept is an access error too', async () => {
    const wrong = await vault.createStore(TIMING, new TestCredential('not-the-vault-token'));
    const err = await failure(wrong.getSecret('rt-support'));
    expect(err).toBeInstanceOf(KeyVaultAccessError);
    expect((err as KeyVaultAccessError).vaultStatus).toBe(401);
    expect(err.message).toContain(KEY_VAULT_ROLE);
  });

  it('no credential at all (no managed identity, no az login) says how to get one', async () => {
    const credential = new TestCredential(vault.sim.accessToken);
    credential.failWith = Object.assign(new Error('ManagedIdentityCredential: no endpoint'), {
      name: 'CredentialUnavailableError',
    });
    const none = await vault.createStore(TIMING, credential);
    const err = await failure(none.getSecret('rt-support'));
    expect(err).toBeInstanceOf(KeyVaultAccessError);
    expect(err.message).toMatch(/managed identity.*az login/);
    expect(err.message).not.toContain('no endpoint');
  });

  it('an untrusted certificate or a vault that is down is unreachable, quickly', async () => {
    const untrusted = new KeyVaultSecretStore(vault.url, vault.credential, {
      ...TIMING,
      disableChallengeResourceVerification: true,
    });
    const tls = await failure(untrusted.getSecret('rt-support'));
    expect(tls.message).toMatch(/unreachable \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*trusted certificates/);

    const down = new KeyVaultSecretStore(`https://127.0.0.1:${await freePort()}`, vault.credential, TIMING);
    const started = Date.now();
    const refused = await failure(down.getSecret('rt-support'));
    expect(Date.now() - started).toBeLessThan(TIMING.deadlineMs!);
    expect(refused.message).toMatch(/unreachable \(ECONNREFUSED\)/);
  });

  it('setting a soft-deleted name recovers it first (409 handled), keeping its history', async () => {
    await store.deleteSecret('rt-support');
    expect(vault.sim.isDeleted('rt-support')).toBe(true);
    expect(await store.getSecret('rt-support')).toBeUndefined();
    await store.setSecret('rt-support', 'newer-token');
    expect(vault.sim.calls('recover')).toBe(1);
    expect(vault.sim.versionsOf('rt-support')!.map((v) => v.value)).toEqual([VALUE, 'newer-token']);
    expect((await store.getSecret('rt-support'))?.value).toBe('newer-token');
  });

  it('a disabled latest version falls back to the newest enabled one (list + get)', async () => {
    const second = await store.setSecret('rt-support', 'second');
    await store.updateSecretProperties('rt-support', second.version, { enabled: false });
    vault.sim.resetStats();
    expect((await store.getSecret('rt-support'))?.value).toBe(VALUE);
    expect(vault.sim.snapshot()).toEqual({ get: 2, listVersions: 1 });
  });

  it('follows nextLink across list pages (25 per page)', async () => {
    for (let i = 0; i < 30; i++) await store.setSecret(`s-${String(i).padStart(2, '0')}`, 'v');
    vault.sim.resetStats();
    expect(await store.listSecrets()).toHaveLength(31);
    expect(vault.sim.calls('list')).toBe(2);
  });
});

describe('openStore', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'open-store-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('opens the file store without KEY_VAULT_URL and Key Vault with it', async () => {
    expect((await openStore(loadSettings({ BROKER_DATA_DIR: dir }))).kind).toBe('file');
    const kv = await openStore(loadSettings({ KEY_VAULT_URL: 'https://my-vault.vault.azure.net/' }), {
      credential: vault.credential,
    });
    expect(kv.kind).toBe('keyvault');
    expect((kv as KeyVaultSecretStore).vaultUrl).toBe('https://my-vault.vault.azure.net');
  });

  it('uses DefaultAzureCredential when none is given (no network until first use)', async () => {
    const kv = await openStore(loadSettings({ KEY_VAULT_URL: 'https://my-vault.vault.azure.net' }), {
      env: { AZURE_CLIENT_ID: '11111111-1111-1111-1111-111111111111' },
    });
    expect(kv.kind).toBe('keyvault');
  });

  it('refuses a KEY_VAULT_URL that is not an https vault URL', async () => {
    for (const url of ['http://my-vault.vault.azure.net', 'https://my-vault.vault.azure.net/secrets/x']) {
      await expect(openStore(loadSettings({ KEY_VAULT_URL: url }))).rejects.toThrow(ConfigError);
    }
  });
});

describe('GrantStore over Key Vault: the refresh token read cache', () => {
  let t = 0;
  const grants = () => new GrantStore(store, { readCacheMs: 2000, clock: { now: () => t } });
  const tags = { status: 'connected' as const, account: 'a@contoso.com' };

  it('reads once for a burst, writes through, and reads again after the TTL', async () => {
    const g = grants();
    const burst = await Promise.all([g.read('support'), g.read('support')]);
    await g.read('support');
    expect(burst[0]?.refreshToken).toBe(VALUE);
    // Two concurrent cold reads may both go out; sequential ones after a read never do.
    const reads = vault.sim.calls('get');
    expect(reads).toBeLessThanOrEqual(2);
    await g.save('support', 'rotated', tags);
    expect((await g.read('support'))?.refreshToken).toBe('rotated');
    expect(vault.sim.calls('get')).toBe(reads);
    expect(vault.sim.calls('set')).toBe(1);
    t += 2001;
    expect((await g.read('support'))?.refreshToken).toBe('rotated');
    expect(vault.sim.calls('get')).toBe(reads + 1);
  });

  it('keeps a refresh token whose write failed as the latest, and writes it on the next save or tag update', async () => {
    const g = grants();
    await g.read('support');
    vault.sim.failNext('set', { status: 500 }, 10);
    await expect(g.save('support', 'rotated-but-unsaved', tags)).rejects.toBeInstanceOf(BrokerError);
    t += 10_000;
    const before = vault.sim.calls('get');
    expect((await g.read('support'))?.refreshToken).toBe('rotated-but-unsaved');
    expect(vault.sim.calls('get')).toBe(before);
    vault.sim.clearFaults();
    // A provider that returns no new refresh token: updating tags writes the unsaved token.
    const pending = (await g.read('support'))!;
    await g.updateTags(pending, 'support', { ...tags, refreshedAt: '2026-01-01T00:00:00.000Z' });
    const stored = await store.getSecret('rt-support');
    expect(stored?.value).toBe('rotated-but-unsaved');
    expect(stored?.tags.refreshedAt).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('broker check', () => {
  let dir: string;
  const env = () => ({
    KEY_VAULT_URL: vault.url,
    BROKER_DATA_DIR: dir,
    BROKER_CONNECTIONS: JSON.stringify({
      connections: {
        mailbox: {
          provider: 'entra',
          tenant: 'organizations',
          clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
          credential: { type: 'secret', secretName: 'app-secret' },
          scopes: ['https://graph.microsoft.com/Mail.Read'],
        },
      },
    }),
  });
  const check = async (extra: Record<string, string> = {}) => {
    const lines: string[] = [];
    const code = await runCheck({
      env: { ...env(), ...extra },
      out: (l) => lines.push(l),
      openStore: () => vault.createStore(TIMING),
      now: () => Date.UTC(2026, 0, 1),
    });
    return { code, lines };
  };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'check-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('passes on a reachable, writable vault holding the client secret', async () => {
    await store.setSecret('app-secret', VALUE, { expiresOn: new Date(Date.UTC(2027, 0, 1)) });
    const { code, lines } = await check();
    expect(lines.every((l) => l.startsWith('ok '))).toBe(true);
    expect(lines.join('\n')).toContain(`store Key Vault ${vault.url}`);
    expect(lines.join('\n')).toContain('client secret app-secret present, expires on 2027-01-01');
    expect(code).toBe(0);
    expect(vault.sim.versionsOf('broker-check')).toHaveLength(1);
    expect(lines.join('\n')).not.toContain(VALUE);
  });

  it('prints one FAIL line naming the role when the vault refuses access', async () => {
    vault.sim.denyAccess();
    const { code, lines } = await check();
    expect(code).toBe(1);
    const failures = lines.filter((l) => l.startsWith('FAIL'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain(`refused access (403, ForbiddenByRbac)`);
    expect(failures[0]).toContain(KEY_VAULT_ROLE);
  });

  it('fails on a missing client secret and warns on one about to expire', async () => {
    let result = await check();
    expect(result.code).toBe(1);
    expect(result.lines).toContain(
      'FAIL  connection mailbox: client secret app-secret is not in the store; add it with "broker secrets set app-secret"',
    );
    await store.setSecret('app-secret', VALUE, { expiresOn: new Date(Date.UTC(2026, 0, 6)) });
    result = await check();
    expect(result.code).toBe(0);
    expect(
      result.lines.some((l) => /^warn {2}connection mailbox: .* expires on 2026-01-06 \(in 5 days\)/.test(l)),
    ).toBe(true);
  });

  it('prints each bad setting on its own line', async () => {
    const { code, lines } = await check({ PORT: 'many', ROTATION_SCHEDULE: 'often' });
    expect(code).toBe(1);
    expect(lines.filter((l) => l.startsWith('FAIL  settings:'))).toHaveLength(3);
  });
});

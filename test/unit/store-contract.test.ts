import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import type { SecretStore } from '../../src/lib/store/secret-store.js';
import { type KeyVaultFake, startKeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import { MemorySecretStore } from '../fakes/memory-store.js';

/**
 * The `SecretStore` port's contract, run against both implementations: the embedded file store and
 * the Key Vault store (real `SecretClient` → the simulator over HTTPS), and against the in-memory
 * fake the service tests use. Times are whole seconds, the resolution Key Vault keeps.
 */
let clock = Date.UTC(2026, 0, 1);
const now = () => clock;

interface StoreUnderTest {
  name: string;
  setup(): Promise<void>;
  open(): Promise<SecretStore>;
  teardown(): Promise<void>;
  dispose(): Promise<void>;
}

function fileStore(): StoreUnderTest {
  let root = '';
  return {
    name: 'file',
    async setup() {},
    async open() {
      root = await mkdtemp(path.join(os.tmpdir(), 'store-contract-'));
      return FileSecretStore.open(path.join(root, 'data'), { now });
    },
    async teardown() {
      await rm(root, { recursive: true, force: true });
    },
    async dispose() {},
  };
}

function keyVaultStore(): StoreUnderTest {
  let vault: KeyVaultFake;
  let store: SecretStore;
  return {
    name: 'keyvault',
    async setup() {
      vault = await startKeyVaultSimulator({ now });
      store = await vault.createStore({ attemptTimeoutMs: 2000, deadlineMs: 5000 });
    },
    async open() {
      vault.sim.reset();
      return store;
    },
    async teardown() {},
    async dispose() {
      await vault.close();
    },
  };
}

/** The service tests' fake (test/fakes/memory-store.ts): it must keep the same promises. */
function memoryStore(): StoreUnderTest {
  return {
    name: 'memory',
    async setup() {},
    async open() {
      return new MemorySecretStore(now);
    },
    async teardown() {},
    async dispose() {},
  };
}

describe.each([fileStore(), keyVaultStore(), memoryStore()])('SecretStore contract: $name', (subject) => {
  let store: SecretStore;

  beforeAll(() => subject.setup());
  afterAll(() => subject.dispose());
  beforeEach(async () => {
    clock = Date.UTC(2026, 0, 1);
    store = await subject.open();
  });
  afterEach(() => subject.teardown());

  it('names its kind', () => {
    expect(store.kind).toBe(subject.name);
  });

  it('keeps versions oldest first and answers the latest enabled one', async () => {
    const v1 = await store.setSecret('rt-a', 'one', { tags: { status: 'connected' } });
    clock += 1000;
    const v2 = await store.setSecret('rt-a', 'two', {
      tags: { status: 'connected' },
      expiresOn: new Date(clock + 5000),
    });
    expect(v1.version).toMatch(/^[0-9a-f]{32}$/);
    expect(v2.version).not.toBe(v1.version);
    expect(v2).toMatchObject({ name: 'rt-a', enabled: true, tags: { status: 'connected' } });
    expect(v2.createdOn.getTime()).toBe(clock);
    expect(v2.expiresOn?.getTime()).toBe(clock + 5000);

    const latest = await store.getSecret('rt-a');
    expect(latest?.value).toBe('two');
    expect(latest?.version).toBe(v2.version);
    expect(latest?.expiresOn?.getTime()).toBe(clock + 5000);
    expect((await store.getSecret('rt-a', v1.version))?.value).toBe('one');

    const versions = await store.listVersions('rt-a');
    expect(versions.map((v) => v.version)).toEqual([v1.version, v2.version]);
    expect(versions.every((v) => !('value' in v))).toBe(true);

    await store.updateSecretProperties('rt-a', v2.version, { enabled: false });
    expect((await store.getSecret('rt-a'))?.value).toBe('one');
    expect(await store.getSecret('rt-a', v2.version)).toBeUndefined();
    await store.updateSecretProperties('rt-a', v1.version, { enabled: false });
    expect(await store.getSecret('rt-a')).toBeUndefined();

    expect(await store.getSecret('rt-none')).toBeUndefined();
    expect(await store.getSecret('rt-a', '0'.repeat(32))).toBeUndefined();
    expect(await store.listVersions('rt-none')).toEqual([]);
  });

  it('replaces tags whole, sets expiry and updatedOn, and refuses unknown versions', async () => {
    const v = await store.setSecret('rt-a', 'x', { tags: { account: 'a@b.c', status: 'connected' } });
    clock += 60_000;
    const updated = await store.updateSecretProperties('rt-a', v.version, {
      tags: { status: 'needs_consent' },
      expiresOn: new Date(Date.UTC(2027, 0, 1)),
    });
    expect(updated.tags).toEqual({ status: 'needs_consent' });
    expect(updated.expiresOn?.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(updated.updatedOn.getTime()).toBe(clock);
    expect(updated.createdOn.getTime()).toBe(clock - 60_000);
    const read = await store.getSecret('rt-a');
    expect(read?.tags).toEqual({ status: 'needs_consent' });
    expect(read?.value).toBe('x');
    const again = await store.updateSecretProperties('rt-a', v.version, { enabled: true });
    expect(again.tags).toEqual({ status: 'needs_consent' });
    expect(again.expiresOn?.toISOString()).toBe('2027-01-01T00:00:00.000Z');

    await expect(store.updateSecretProperties('rt-a', 'f'.repeat(32), { tags: {} })).rejects.toThrow(
      /no such version/,
    );
    await expect(store.updateSecretProperties('rt-none', v.version, { tags: {} })).rejects.toThrow(
      /no such version/,
    );
    // Typed: a caller tells a missing version from a refused request without reading the words.
    await expect(store.updateSecretProperties('rt-none', v.version, { tags: {} })).rejects.toMatchObject({
      name: 'StoreError',
      kind: 'not_found',
    });
  });

  it('treats names case-insensitively and keeps the original name', async () => {
    await store.setSecret('RT-Mailbox', 'first');
    await store.setSecret('rt-mailbox', 'second');
    const got = await store.getSecret('rt-MAILBOX');
    expect(got?.value).toBe('second');
    expect(got?.name).toBe('RT-Mailbox');
    expect(await store.listVersions('rt-mailbox')).toHaveLength(2);
    await store.deleteSecret('RT-MAILBOX');
    expect(await store.getSecret('rt-mailbox')).toBeUndefined();
  });

  it('rejects invalid names and tags without echoing values', async () => {
    const token = 'eyJ0eXAi.secret-token-value';
    for (const bad of ['', 'a_b', 'a.b', 'x'.repeat(128), token]) {
      const err = await store.setSecret(bad, token).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).not.toContain('secret-token-value');
    }
    await expect(store.getSecret('no/slash')).rejects.toThrow(/invalid secret name/);
    await expect(store.getSecret('no/slash')).rejects.toMatchObject({ name: 'StoreError', kind: 'invalid' });
    await expect(store.setSecret('x'.repeat(127), 'ok')).resolves.toBeDefined();

    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.setSecret('rt-a', token, { tags: sixteen })).rejects.toThrow(/at most 15/);
    const fifteen = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.setSecret('rt-a', 'ok', { tags: fifteen })).resolves.toBeDefined();
    const longValue = await store
      .setSecret('rt-a', token, { tags: { lastError: 'e'.repeat(257) } })
      .catch((e: unknown) => e);
    expect((longValue as Error).message).toMatch(/tag "lastError" value is longer than 256/);
    expect((longValue as Error).message).not.toContain(token);
    await expect(store.setSecret('rt-a', 'ok', { tags: { ['n'.repeat(513)]: 'v' } })).rejects.toThrow(
      /longer than 512/,
    );
    await expect(
      store.setSecret('rt-a', 'ok', { tags: { lastError: 'e'.repeat(256) } }),
    ).resolves.toBeDefined();
  });

  it('lists the latest properties of every secret, never values, and not deleted ones', async () => {
    await store.setSecret('rt-b', 'b1', { tags: { status: 'connected' } });
    await store.setSecret('app-secret', 'sekret', { expiresOn: new Date(Date.UTC(2027, 5, 1)) });
    clock += 1000;
    await store.setSecret('rt-b', 'b2', { tags: { status: 'needs_consent' } });
    await store.setSecret('rt-gone', 'g');
    await store.deleteSecret('rt-gone');
    const listed = await store.listSecrets();
    expect(listed.map((p) => p.name).sort()).toEqual(['app-secret', 'rt-b']);
    for (const p of listed) expect(p).not.toHaveProperty('value');
    const rt = listed.find((p) => p.name === 'rt-b')!;
    expect(rt).toMatchObject({ enabled: true, tags: { status: 'needs_consent' } });
    expect(rt.updatedOn.getTime()).toBe(clock);
    expect(listed.find((p) => p.name === 'app-secret')!.expiresOn?.toISOString()).toBe(
      '2027-06-01T00:00:00.000Z',
    );
    expect(JSON.stringify(listed)).not.toContain('sekret');
  });

  it('deletes: a missing secret is no error, a deleted one reads as missing and can be set again', async () => {
    await expect(store.deleteSecret('rt-never')).resolves.toBeUndefined();
    await store.setSecret('rt-a', 'old');
    await store.deleteSecret('rt-a');
    expect(await store.getSecret('rt-a')).toBeUndefined();
    clock += 1000;
    const next = await store.setSecret('rt-a', 'new', { tags: { status: 'connected' } });
    const got = await store.getSecret('rt-a');
    expect(got).toMatchObject({ value: 'new', version: next.version, tags: { status: 'connected' } });
    const versions = await store.listVersions('rt-a');
    expect(versions[versions.length - 1]!.version).toBe(next.version);
  });

  it('round-trips values exactly: unicode, newlines, JSON-looking text, 10 KB', async () => {
    const values = [
      'plain',
      'ünïcødé ✓ 雪',
      'line one\nline two\r\n',
      '{"value":"not json to the store"}',
      ' padded ',
      'x'.repeat(10_000),
    ];
    for (const [i, value] of values.entries()) {
      await store.setSecret(`s-${i}`, value);
      expect((await store.getSecret(`s-${i}`))?.value).toBe(value);
    }
  });

  it('keeps every version of concurrent writes to one name', async () => {
    const written = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.setSecret('rt-busy', `token-${i}`)),
    );
    const versions = await store.listVersions('rt-busy');
    expect(new Set(versions.map((v) => v.version))).toEqual(new Set(written.map((w) => w.version)));
    const latest = await store.getSecret('rt-busy');
    expect(latest?.value).toMatch(/^token-[0-7]$/);
  });
});

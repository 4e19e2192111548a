import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/lib/store/file-store.js';

const posix = process.platform !== 'win32';

let root: string;
let dataDir: string;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'file-store-'));
  dataDir = path.join(root, 'data');
  clock = Date.UTC(2026, 0, 1);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(full)));
    else out.push(full);
  }
  return out;
}

const secretFile = (name: string) => path.join(dataDir, 'secrets', `${name}.json`);

/** What only the embedded store does; behaviour shared with Key Vault is in store-contract.test.ts, run on both. */
describe('FileSecretStore', () => {
  it('creates the data dir 0700, the key 0600 and secret files 0600', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    expect(store.kind).toBe('file');
    await store.setSecret('rt-a', 'value');
    const key = await readFile(path.join(dataDir, 'store.key'));
    expect(key.length).toBe(32);
    if (posix) {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dataDir, 'secrets'))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dataDir, 'store.key'))).mode & 0o777).toBe(0o600);
      expect((await stat(secretFile('rt-a'))).mode & 0o777).toBe(0o600);
    }
  });

  it('treats names case-insensitively and keeps the original name', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('RT-Mailbox', 'first');
    await store.setSecret('rt-mailbox', 'second');
    const got = await store.getSecret('rt-MAILBOX');
    expect(got?.value).toBe('second');
    expect(got?.name).toBe('RT-Mailbox');
    expect(await store.listVersions('rt-mailbox')).toHaveLength(2);
    expect(await readdir(path.join(dataDir, 'secrets'))).toEqual(['rt-mailbox.json']);
    await store.deleteSecret('RT-MAILBOX');
    expect(await store.getSecret('rt-mailbox')).toBeUndefined();
  });

  it('rejects invalid names and tags without echoing values', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    const token = 'eyJ0eXAi.secret-token-value';
    for (const bad of ['', 'a_b', 'a.b', 'x'.repeat(128), token]) {
      const err = await store.setSecret(bad, token).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).not.toContain('secret-token-value');
    }
    await expect(store.getSecret('no/slash')).rejects.toThrow(/invalid secret name/);
    await expect(store.setSecret('x'.repeat(127), 'ok')).resolves.toBeDefined();

    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.setSecret('rt-a', token, { tags: sixteen })).rejects.toThrow(/at most 15/);
    const fifteen = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.setSecret('rt-a', 'ok', { tags: fifteen })).resolves.toBeDefined();
    const longValue = await store
      .setSecret('rt-a', token, { tags: { lastError: 'e'.repeat(257) } })
      .catch((e) => e);
    expect((longValue as Error).message).toMatch(/tag "lastError" value is longer than 256/);
    expect((longValue as Error).message).not.toContain(token);
    await expect(store.setSecret('rt-a', 'ok', { tags: { ['n'.repeat(513)]: 'v' } })).rejects.toThrow(
      /longer than 512/,
    );
    await expect(
      store.setSecret('rt-a', 'ok', { tags: { ['n'.repeat(512)]: 'v'.repeat(256) } }),
    ).resolves.toBeDefined();
    await expect(store.setSecret('rt-a', 'ok', { tags: { n: 5 as unknown as string } })).rejects.toThrow(
      /tag "n" must be a string/,
    );
    const v = (await store.listVersions('rt-a'))[0]!;
    await expect(store.updateSecretProperties('rt-a', v.version, { tags: sixteen })).rejects.toThrow(
      /at most 15/,
    );
  });

  it('lists the latest version of every secret without values', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-b', 'first-value-of-b', { tags: { n: '1' } });
    const b2 = await store.setSecret('rt-b', 'second-value-of-b', { tags: { n: '2' } });
    const a = await store.setSecret('broker-seal-key', 'k');
    const list = await store.listSecrets();
    expect(list.map((p) => [p.name, p.version])).toEqual([
      ['broker-seal-key', a.version],
      ['rt-b', b2.version],
    ]);
    expect(list.find((p) => p.name === 'rt-b')?.tags).toEqual({ n: '2' });
    for (const p of list) expect(p).not.toHaveProperty('value');
    expect(JSON.stringify(list)).not.toMatch(/value-of-b/);
  });

  it('deletes a secret, and deleting a missing one is a no-op', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-a', 'x');
    await store.setSecret('rt-b', 'y');
    await store.deleteSecret('rt-a');
    await store.deleteSecret('rt-a');
    expect(await store.getSecret('rt-a')).toBeUndefined();
    expect(await store.listVersions('rt-a')).toEqual([]);
    expect((await store.listSecrets()).map((p) => p.name)).toEqual(['rt-b']);
    const fresh = await store.setSecret('rt-a', 'z');
    expect(await store.listVersions('rt-a')).toHaveLength(1);
    expect((await store.getSecret('rt-a'))?.version).toBe(fresh.version);
  });

  it('keeps only the newest maxVersions versions', async () => {
    const store = await FileSecretStore.open(dataDir, { now, maxVersions: 3 });
    const written: string[] = [];
    for (let i = 0; i < 5; i++) written.push((await store.setSecret('rt-a', `v${i}`)).version);
    expect((await store.listVersions('rt-a')).map((v) => v.version)).toEqual(written.slice(2));
    expect(await store.getSecret('rt-a', written[0])).toBeUndefined();
    expect((await store.getSecret('rt-a', written[2]))?.value).toBe('v2');
    await expect(FileSecretStore.open(dataDir, { maxVersions: 0 })).rejects.toThrow(/maxVersions/);
  });

  it('keeps 25 versions by default', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    for (let i = 0; i < 27; i++) await store.setSecret('rt-a', `v${i}`);
    const versions = await store.listVersions('rt-a');
    expect(versions).toHaveLength(25);
    expect((await store.getSecret('rt-a'))?.value).toBe('v26');
  });

  it('never writes a value in plaintext', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    const value = 'PLAINTEXT-CANARY-0.AXkAb5Zt7_refresh-token-ÿ';
    const v = await store.setSecret('rt-a', value, { tags: { account: 'me@example.com' } });
    await store.setSecret('rt-a', value);
    await store.updateSecretProperties('rt-a', v.version, { tags: { status: 'connected' } });
    const needles = [
      Buffer.from(value, 'utf8'),
      Buffer.from('PLAINTEXT-CANARY', 'utf8'),
      Buffer.from(Buffer.from(value, 'utf8').toString('base64').slice(0, 16), 'utf8'),
      Buffer.from(value, 'utf16le'),
    ];
    const files = await allFiles(dataDir);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const needle of needles) expect(bytes.includes(needle), file).toBe(false);
    }
    expect((await store.getSecret('rt-a'))?.value).toBe(value);
  });

  it('binds each value to its secret: ciphertext copied to another secret does not decrypt', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-a', 'value-of-a');
    await store.setSecret('rt-b', 'value-of-b');
    const a = JSON.parse(await readFile(secretFile('rt-a'), 'utf8'));
    const b = JSON.parse(await readFile(secretFile('rt-b'), 'utf8'));
    b.versions[0].value = a.versions[0].value;
    await writeFile(secretFile('rt-b'), JSON.stringify(b));
    const err = await store.getSecret('rt-b').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(secretFile('rt-b'));
    expect((err as Error).message).toMatch(/does not decrypt/);
    expect((err as Error).message).not.toMatch(/value-of/);
    expect((await store.getSecret('rt-a'))?.value).toBe('value-of-a');
  });

  it('reports corrupt files by name, never by content', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-a', 'value');
    await writeFile(secretFile('rt-a'), '{"name": "rt-a", "versions": [ SECRET-LOOKING');
    const err = (await store.getSecret('rt-a').catch((e: unknown) => e)) as Error;
    expect(err.message).toContain(secretFile('rt-a'));
    expect(err.message).toMatch(/corrupt/);
    expect(err.message).not.toContain('SECRET-LOOKING');
    await expect(store.listSecrets()).rejects.toThrow(/corrupt/);
    await expect(store.setSecret('rt-a', 'v')).rejects.toThrow(/corrupt/);

    await store.setSecret('rt-b', 'value');
    const b = JSON.parse(await readFile(secretFile('rt-b'), 'utf8'));
    b.versions[0].value.tag = Buffer.alloc(16).toString('base64');
    await writeFile(secretFile('rt-b'), JSON.stringify(b));
    await expect(store.getSecret('rt-b')).rejects.toThrow(/does not decrypt/);

    await store.setSecret('rt-c', 'value');
    const c = JSON.parse(await readFile(secretFile('rt-c'), 'utf8'));
    c.versions[0].version = 'not-a-version';
    await writeFile(secretFile('rt-c'), JSON.stringify(c));
    await expect(store.listVersions('rt-c')).rejects.toThrow(
      /corrupt: unexpected content at versions\.0\.version/,
    );
  });

  it('says the key file does not match when store.key was replaced', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-a', 'value');
    await writeFile(path.join(dataDir, 'store.key'), Buffer.alloc(32, 7));
    const other = await FileSecretStore.open(dataDir, { now });
    await expect(other.getSecret('rt-a')).rejects.toThrow(/key file .*store\.key does not match/);
    await expect(other.setSecret('rt-a', 'new')).rejects.toThrow(/does not match/);

    await writeFile(path.join(dataDir, 'store.key'), Buffer.alloc(5));
    await expect(FileSecretStore.open(dataDir)).rejects.toThrow(/store\.key is damaged/);
  });

  it('serializes concurrent writers: 50 parallel setSecret calls all land, pruned, with no temp files', async () => {
    const store = await FileSecretStore.open(dataDir, { now, maxVersions: 10 });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.setSecret(i % 2 ? 'rt-busy' : 'RT-BUSY', `value-${i}`)),
    );
    const ids = new Set(results.map((r) => r.version));
    expect(ids.size).toBe(50);
    const versions = await store.listVersions('rt-busy');
    expect(versions).toHaveLength(10);
    // The chain runs in call order, so the survivors are the last ten calls.
    expect(versions.map((v) => v.version)).toEqual(results.slice(40).map((r) => r.version));
    expect((await store.getSecret('rt-busy'))?.value).toBe('value-49');
    const files = (await allFiles(dataDir)).map((f) => path.relative(dataDir, f)).sort();
    expect(files).toEqual([path.join('secrets', 'rt-busy.json'), 'store.key']);
  });

  it('lets reads run alongside writes without seeing half-written files', async () => {
    const store = await FileSecretStore.open(dataDir, { now });
    await store.setSecret('rt-a', 'start');
    const writes = Array.from({ length: 20 }, (_, i) => store.setSecret('rt-a', `w${i}-${'x'.repeat(2000)}`));
    const reads = Array.from({ length: 40 }, () => store.getSecret('rt-a'));
    await Promise.all(writes);
    for (const r of await Promise.all(reads)) expect(r?.value).toMatch(/^(start|w\d+-x+)$/);
  });

  it('a new instance on the same dir reads what the first wrote', async () => {
    const first = await FileSecretStore.open(dataDir, { now });
    const v = await first.setSecret('rt-a', 'persisted', {
      tags: { account: 'a@b.c' },
      expiresOn: new Date(Date.UTC(2026, 5, 1)),
    });
    const key = await readFile(path.join(dataDir, 'store.key'));
    const second = await FileSecretStore.open(dataDir);
    expect(await readFile(path.join(dataDir, 'store.key'))).toEqual(key);
    const got = await second.getSecret('rt-a');
    expect(got).toEqual({ ...v, value: 'persisted' });
  });

  it('two instances opening a fresh dir at once agree on one key', async () => {
    const [a, b] = await Promise.all([FileSecretStore.open(dataDir), FileSecretStore.open(dataDir)]);
    await a.setSecret('rt-a', 'from-a');
    expect((await b.getSecret('rt-a'))?.value).toBe('from-a');
    expect((await allFiles(dataDir)).map((f) => path.relative(dataDir, f)).sort()).toEqual([
      path.join('secrets', 'rt-a.json'),
      'store.key',
    ]);
  });
});

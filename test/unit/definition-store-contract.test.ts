import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileDefinitionStore } from '../../src/lib/definitions/file-definition-store.js';
import {
  contractClock,
  type DefinitionStoreUnderTest,
  definitionStoreContract,
} from '../support/definition-store-contract.js';
import { ROOT } from '../support/process.js';

/** The definition store contract on the embedded file store (Table Storage: table-definition-store.test.ts). */
const now = () => contractClock.now;

function fileStore(): DefinitionStoreUnderTest {
  let root = '';
  return {
    name: 'file',
    async setup() {},
    async open() {
      root = await mkdtemp(path.join(os.tmpdir(), 'definitions-contract-'));
      const dir = path.join(root, 'data');
      return [await FileDefinitionStore.open(dir, { now }), await FileDefinitionStore.open(dir, { now })];
    },
    async teardown() {
      await rm(root, { recursive: true, force: true });
    },
    async dispose() {},
  };
}

definitionStoreContract(fileStore());

describe('FileDefinitionStore files', () => {
  it('writes 0600 files in 0700 folders', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'definitions-mode-'));
    try {
      const store = await FileDefinitionStore.open(path.join(root, 'data'), { now });
      await store.put('connection', 'desk1', { template: 't' }, { name: 'function-key' });
      const mode = async (p: string) => (await stat(p)).mode & 0o777;
      expect(await mode(path.join(root, 'data', 'definitions'))).toBe(0o700);
      expect(await mode(path.join(root, 'data', 'definitions', 'connections'))).toBe(0o700);
      expect(await mode(path.join(root, 'data', 'definitions', 'connections', 'desk1.json'))).toBe(0o600);
      expect(await mode(path.join(root, 'data', 'definitions', 'changes.log'))).toBe(0o600);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('FileDefinitionStore listing', () => {
  it("keeps the sorted names while the folder is unchanged, and sees another store's create", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'definitions-names-'));
    try {
      const dir = path.join(root, 'data');
      const [a, b] = [
        await FileDefinitionStore.open(dir, { now }),
        await FileDefinitionStore.open(dir, { now }),
      ];
      const by = { name: 'test' };
      for (const id of ['c3', 'c1', 'c2']) await a.put('connection', id, { template: 't' }, by);
      const folder = path.join(dir, 'definitions', 'connections');
      const past = new Date(Date.now() - 60_000);
      await utimes(folder, past, past);
      const names = async (after?: string) =>
        (await a.list('connection', { top: 10, after })).records.map((r) => r.name);
      expect(await names()).toEqual(['c1', 'c2', 'c3']);
      expect(await names('c1')).toEqual(['c2', 'c3']);
      // Another store (process) creates one: the folder's mtime moves, the names are read again.
      await b.put('connection', 'c0', { template: 't' }, by);
      expect(await names()).toEqual(['c0', 'c1', 'c2', 'c3']);
      // Kept while the mtime is the one listed: a file slipped in under the same mtime is not seen.
      await utimes(folder, past, past);
      expect(await names()).toEqual(['c0', 'c1', 'c2', 'c3']);
      await b.put('connection', 'c4', { template: 't' }, by);
      await utimes(folder, past, past);
      expect(await names()).toEqual(['c0', 'c1', 'c2', 'c3']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('FileDefinitionStore across processes', () => {
  it('lets exactly one of several processes replace each ETag', { timeout: 60_000 }, async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'definitions-processes-'));
    try {
      const dir = path.join(root, 'data');
      const store = await FileDefinitionStore.open(dir, { now });
      await store.put('connection', 'shared', { template: 'mail' }, { name: 'test' });
      const writers = Array.from({ length: 4 }, (_, i) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'test/support/definition-writer.ts'), dir, '60', `w${i}`],
          { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        const done = new Promise<{ replaced: string[]; refused: number }>((resolve, reject) =>
          child.once('exit', (code) =>
            code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`writer ${i}: ${code}`)),
          ),
        );
        return { child, done };
      });
      // Every writer has opened the store and waits; then all start at once.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (const w of writers) w.child.stdin.end('go\n');
      const results = await Promise.all(writers.map((w) => w.done));
      const replaced = results.flatMap((r) => r.replaced);
      // An ETag replaced twice is a lost update: two processes both passed If-Match on it.
      expect(new Set(replaced).size).toBe(replaced.length);
      expect(replaced.length + results.reduce((n, r) => n + r.refused, 0)).toBe(240);
      expect(replaced.length).toBeGreaterThan(0);
      // No lock file is left behind.
      expect(
        (await readdir(path.join(dir, 'definitions', 'connections'))).filter((f) => f.endsWith('.lock')),
      ).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileDefinitionStore } from '../../src/lib/definitions/file-definition-store.js';
import {
  contractClock,
  type DefinitionStoreUnderTest,
  definitionStoreContract,
} from '../support/definition-store-contract.js';

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

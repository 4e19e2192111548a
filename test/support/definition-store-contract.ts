import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DefinitionStore } from '../../src/lib/definitions/definition-store.js';
import { isBrokerError } from '../../src/lib/errors.js';

/**
 * The `DefinitionStore` port's contract, run on every implementation (the embedded file store, Azure
 * Table Storage on Azurite). Two handles on one backend stand for two instances of the broker.
 */

/** The clock the stores under test are given; the contract moves it. */
export const contractClock = { now: Date.UTC(2026, 0, 1) };

export interface DefinitionStoreUnderTest {
  name: string;
  setup(): Promise<void>;
  /** Two handles on one fresh, empty backend. */
  open(): Promise<[DefinitionStore, DefinitionStore]>;
  teardown(): Promise<void>;
  dispose(): Promise<void>;
}

const alice = { name: 'alice', id: '00000000-0000-0000-0000-00000000000a' };
const key = { name: 'function-key' };

const code = async (work: Promise<unknown>): Promise<string> => {
  try {
    await work;
    return 'ok';
  } catch (err) {
    return isBrokerError(err) ? err.code : `not a BrokerError: ${String(err)}`;
  }
};

export function definitionStoreContract(under: DefinitionStoreUnderTest): void {
  describe(`DefinitionStore contract: ${under.name}`, () => {
    let store: DefinitionStore;
    let other: DefinitionStore;
    beforeAll(() => under.setup(), 60_000);
    afterAll(() => under.dispose());
    beforeEach(async () => {
      [store, other] = await under.open();
    });
    afterEach(() => under.teardown());

    it('creates, reads and replaces, keeping who created it and when', async () => {
      expect(await store.get('connection', 'desk1')).toBeUndefined();
      const first = await store.put(
        'connection',
        'desk1',
        { template: 't', expectedAccount: 'a@b.c' },
        alice,
      );
      expect(first.created).toBe(true);
      expect(first.record).toMatchObject({
        kind: 'connection',
        name: 'desk1',
        definition: { template: 't', expectedAccount: 'a@b.c' },
        createdBy: alice,
        updatedBy: alice,
      });
      expect(first.record.etag).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(await other.get('connection', 'desk1')).toEqual(first.record);

      contractClock.now += 60_000;
      const second = await other.put('connection', 'desk1', { template: 't' }, key);
      expect(second.created).toBe(false);
      expect(second.record.etag).not.toBe(first.record.etag);
      expect(second.record.createdAt).toBe(first.record.createdAt);
      expect(second.record.createdBy).toEqual(alice);
      expect(second.record.updatedBy).toEqual(key);
      expect(Date.parse(second.record.updatedAt)).toBeGreaterThan(Date.parse(first.record.updatedAt));
      expect((await store.get('connection', 'desk1'))?.definition).toEqual({ template: 't' });
    });

    it('keeps connections and templates apart', async () => {
      await store.put('template', 'same', { scopes: ['x'] }, key);
      expect(await store.get('connection', 'same')).toBeUndefined();
      await store.put('connection', 'same', { template: 'same' }, key);
      expect((await store.get('template', 'same'))?.definition).toEqual({ scopes: ['x'] });
    });

    it('holds a definition of 60 KB with any characters', async () => {
      const definition = {
        displayName: 'Zürich ✉ "quotes" \\ \n',
        notes: 'x'.repeat(60_000),
        nested: { a: [1, 2] },
      };
      await store.put('connection', 'big', definition, key);
      expect((await other.get('connection', 'big'))?.definition).toEqual(definition);
    });

    it('honours If-None-Match: * and If-Match, writing nothing when they do not hold', async () => {
      const { record } = await store.put('connection', 'c1', { v: 1 }, key, { ifNoneMatch: '*' });
      expect(await code(store.put('connection', 'c1', { v: 2 }, key, { ifNoneMatch: '*' }))).toBe(
        'precondition_failed',
      );
      expect(await code(store.put('connection', 'c1', { v: 2 }, key, { ifMatch: 'stale' }))).toBe(
        'precondition_failed',
      );
      expect(await code(store.put('connection', 'nope', { v: 2 }, key, { ifMatch: record.etag }))).toBe(
        'precondition_failed',
      );
      expect(await store.get('connection', 'nope')).toBeUndefined();
      expect((await store.get('connection', 'c1'))?.definition).toEqual({ v: 1 });
      const replaced = await other.put('connection', 'c1', { v: 3 }, key, { ifMatch: record.etag });
      expect(replaced.record.definition).toEqual({ v: 3 });
    });

    it('lets exactly one of concurrent writes with the same ETag win', async () => {
      const { record } = await store.put('connection', 'race', { v: 0 }, key);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          code(
            (i % 2 ? store : other).put('connection', 'race', { v: i + 1 }, key, { ifMatch: record.etag }),
          ),
        ),
      );
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.filter((r) => r === 'precondition_failed')).toHaveLength(7);
      const creates = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          code((i % 2 ? store : other).put('connection', 'fresh', { v: i }, key, { ifNoneMatch: '*' })),
        ),
      );
      expect(creates.filter((r) => r === 'ok')).toHaveLength(1);
    });

    it('deletes, honouring If-Match; deleting nothing is false', async () => {
      const { record } = await store.put('template', 't1', { scopes: ['a'] }, key);
      expect(await code(store.delete('template', 't1', { ifMatch: 'stale' }))).toBe('precondition_failed');
      expect(await other.get('template', 't1')).toBeDefined();
      expect(await other.delete('template', 't1', { ifMatch: record.etag })).toBe(true);
      expect(await store.get('template', 't1')).toBeUndefined();
      expect(await store.delete('template', 't1')).toBe(false);
    });

    it('lists by name in pages, filtered by template', async () => {
      const names = ['d', 'a', 'c', 'e', 'b', 'f'];
      for (const [i, name] of names.entries())
        await store.put('connection', name, i % 2 ? { template: 'odd' } : { template: 'even' }, key);
      await store.put('template', 'zz', {}, key);
      const first = await other.list('connection', { top: 4 });
      expect(first.records.map((r) => r.name)).toEqual(['a', 'b', 'c', 'd']);
      expect(first.more).toBe(true);
      const rest = await other.list('connection', { top: 4, after: 'd' });
      expect(rest.records.map((r) => r.name)).toEqual(['e', 'f']);
      expect(rest.more).toBe(false);
      const odd = await store.list('connection', { top: 10, template: 'odd' });
      expect(odd.records.map((r) => r.name)).toEqual(['a', 'e', 'f']);
      expect(odd.records[0]?.definition).toEqual({ template: 'odd' });
      const oddPage = await store.list('connection', { top: 2, template: 'odd' });
      expect(oddPage.records.map((r) => r.name)).toEqual(['a', 'e']);
      expect(oddPage.more).toBe(true);
      expect((await store.list('template', { top: 10 })).records.map((r) => r.name)).toEqual(['zz']);
    });

    it("feeds every instance the other's writes and deletes, each once", async () => {
      const start = await other.changesSince();
      expect(start.changes).toEqual([]);
      const idle = await other.changesSince(start.cursor);
      expect(idle.changes).toEqual([]);
      await store.put('connection', 'n1', { v: 1 }, key);
      await store.put('template', 't1', {}, key);
      await store.delete('connection', 'n1');
      const batch = await other.changesSince(idle.cursor);
      expect(batch.reset ?? false).toBe(false);
      expect(batch.changes).toEqual([
        { kind: 'connection', name: 'n1' },
        { kind: 'template', name: 't1' },
        { kind: 'connection', name: 'n1' },
      ]);
      expect((await other.changesSince(batch.cursor)).changes).toEqual([]);
    });
  });
}

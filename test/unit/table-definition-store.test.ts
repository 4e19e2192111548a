import { TableClient } from '@azure/data-tables';
import { describe, expect, it } from 'vitest';
import { TableDefinitionStore } from '../../src/lib/definitions/table-definition-store.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { contractClock, definitionStoreContract } from '../support/definition-store-contract.js';

/**
 * The definition store contract on Azure Table Storage: the real `@azure/data-tables` client against
 * Azurite's table service (a fresh table per test, two clients standing for two instances).
 */
let azurite: Azurite;
let table = 0;
const clock = { now: () => contractClock.now };

const client = (name: string) =>
  TableClient.fromConnectionString(azurite.connectionString, name, {
    allowInsecureConnection: true,
    retryOptions: { maxRetries: 1, retryDelayInMs: 50 },
  });

definitionStoreContract({
  name: 'table (Azurite)',
  async setup() {
    azurite = await startAzurite({ tables: true });
  },
  async open() {
    const name = `definitions${++table}x${Date.now() % 100000}`;
    return [new TableDefinitionStore(client(name), clock), new TableDefinitionStore(client(name), clock)];
  },
  async teardown() {},
  async dispose() {
    await azurite?.close();
  },
});

describe('TableDefinitionStore change feed upkeep', () => {
  it('deletes change rows older than an hour as it writes', async () => {
    const local = await startAzurite({ tables: true });
    try {
      const tableClient = TableClient.fromConnectionString(local.connectionString, 'prune', {
        allowInsecureConnection: true,
      });
      let now = Date.UTC(2026, 0, 1);
      const store = new TableDefinitionStore(tableClient, { now: () => now }, 3);
      const changeRows = async () => {
        let n = 0;
        for await (const _ of tableClient.listEntities({
          queryOptions: { filter: "PartitionKey ge 'change-' and PartitionKey lt 'change.'" },
        }))
          n++;
        return n;
      };
      await store.put('template', 't1', {}, { name: 'function-key' });
      await store.put('template', 't2', {}, { name: 'function-key' });
      expect(await changeRows()).toBe(2);
      // A partition per definition (no hot partition), its key the kind and the name.
      const raw = await tableClient.getEntity<{ template?: string }>('template-t1', 'definition');
      expect(raw.partitionKey).toBe('template-t1');
      now += 2 * 60 * 60 * 1000;
      await store.put('template', 't3', {}, { name: 'function-key' });
      for (let i = 0; i < 50 && (await changeRows()) > 1; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await changeRows()).toBe(1);
    } finally {
      await local.close();
    }
  }, 60_000);
});

describe('TableDefinitionStore outages', () => {
  it('answers 503 upstream_unavailable when the table service is down, and heals', async () => {
    const local = await startAzurite({ tables: true });
    try {
      const store = new TableDefinitionStore(
        TableClient.fromConnectionString(local.connectionString, 'outage', {
          allowInsecureConnection: true,
          retryOptions: { maxRetries: 0 },
        }),
        clock,
      );
      await store.put('template', 't1', { scopes: ['a'] }, { name: 'function-key' });
      await local.stop();
      const started = Date.now();
      await expect(store.get('template', 't1')).rejects.toMatchObject({
        code: 'upstream_unavailable',
        retryAfter: 5,
      });
      expect(Date.now() - started).toBeLessThan(10_000);
      await local.start();
      // Azurite in memory comes back empty: the table is created again on first use.
      await store.put('template', 't2', { scopes: ['b'] }, { name: 'function-key' });
      expect((await store.get('template', 't2'))?.definition).toEqual({ scopes: ['b'] });
    } finally {
      await local.close();
    }
  }, 60_000);
});

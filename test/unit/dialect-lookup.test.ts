import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { createDialectLookup } from '../../src/lib/providers/registry.js';
import { acsTestConnection, testConnection } from '../fakes/connections.js';
import { MemorySecretStore } from '../fakes/memory-store.js';
import { memoryLogger } from '../support/logs.js';

/** The registry's dialect lookup (src/lib/providers/registry.ts). */
describe('dialect lookup', () => {
  const lookup = () =>
    createDialectLookup({
      store: new MemorySecretStore(() => 0),
      fetch: () => Promise.reject(new Error('no request in this test')),
      clock: new ManualClock(0),
      logger: memoryLogger().logger,
    });

  it('keeps a stateful dialect per connection object: the same object, the same dialect', () => {
    const dialectOf = lookup();
    const intranet = acsTestConnection('intranet');
    expect(dialectOf(intranet)).toBe(dialectOf(intranet));
    // A changed definition is a new object from the catalog: its dialect starts afresh (a deleted
    // one's goes with its object instead of staying under its id).
    expect(dialectOf({ ...intranet })).not.toBe(dialectOf(intranet));
  });

  it('builds a stateless (entra) dialect at each use', () => {
    const dialectOf = lookup();
    const mail = testConnection('mail');
    expect(dialectOf(mail)).not.toBe(dialectOf(mail));
  });
});

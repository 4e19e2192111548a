import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACING_WINDOW_MS, VaultPacer } from '../../src/lib/store/vault-pacer.js';
import { testConnection } from '../fakes/connections.js';
import { type KeyVaultFake, startKeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import { services } from '../fakes/services.js';

const HOUR = 3_600_000;
const CONCURRENCY = 4;
/** The simulated vault's limits: small, so that a pass of a few dozen connections meets them. */
const LIMITS = { transactionsPer10s: 40, writesPer10s: 12 };

/**
 * A clock for the vault and the pacer that moves only when the pacer sleeps: the tests count
 * requests and 429s, never wait for real seconds, and a slow machine cannot change the counts.
 */
function virtualTime() {
  let now = Date.UTC(2026, 0, 1);
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}

describe('VaultPacer', () => {
  it('lets no more than the limits through in any 10 seconds, in order of arrival', async () => {
    const time = virtualTime();
    const pacer = new VaultPacer({ transactionsPer10s: 10, writesPer10s: 3, ...time });
    const sent: Array<{ at: number; write: boolean }> = [];
    for (let i = 0; i < 60; i++) {
      const write = i % 2 === 0;
      await pacer.take(write);
      sent.push({ at: time.now(), write });
    }
    for (const { at } of sent) {
      const inWindow = sent.filter((s) => s.at > at - PACING_WINDOW_MS && s.at <= at);
      expect(inWindow.length).toBeLessThanOrEqual(10);
      expect(inWindow.filter((s) => s.write).length).toBeLessThanOrEqual(3);
    }
    expect(sent.map((s) => s.at)).toEqual([...sent.map((s) => s.at)].sort((a, b) => a - b));
    expect(pacer.stats.transactions).toBe(60);
    expect(pacer.stats.waited).toBeGreaterThan(0);
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => new VaultPacer({ transactionsPer10s: 0, writesPer10s: 1 })).toThrow(/transactionsPer10s/);
    expect(() => new VaultPacer({ transactionsPer10s: 10, writesPer10s: 1.5 })).toThrow(/writesPer10s/);
  });
});

/**
 * A rotation pass on the Key Vault store (real SDK, HTTPS to the simulator) against a vault that
 * enforces its service limits: unpaced, it meets 429s; paced, it meets none and rotates everything.
 */
describe('rotation pass on a rate-limited vault', () => {
  let vault: KeyVaultFake;
  const ids = Array.from({ length: 30 }, (_, i) => `c${i}`);

  beforeAll(async () => {
    vault = await startKeyVaultSimulator({ now: () => time.now() });
  });
  afterAll(() => vault.close());

  let time = virtualTime();

  const pass = async (paced: boolean) => {
    time = virtualTime();
    vault.sim.reset();
    vault.sim.enforceLimits(undefined);
    const store = await vault.createStore({
      deadlineMs: 2000,
      retryOptions: { maxRetries: 1, retryDelayInMs: 10, maxRetryDelayInMs: 20 },
      // Requests already on their way when a window fills (one per worker) may land in the next one:
      // the pacer keeps that much below the vault's limits.
      pacing: paced
        ? {
            transactionsPer10s: LIMITS.transactionsPer10s - CONCURRENCY,
            writesPer10s: LIMITS.writesPer10s - CONCURRENCY,
            ...time,
          }
        : false,
    });
    const world = services(
      ids.map((id) => testConnection(id)),
      { concurrency: CONCURRENCY, store },
    );
    for (const id of ids) await world.seedGrant(id, `rt-seed-${id}`);
    world.clock.advance(25 * HOUR);
    vault.sim.resetStats();
    vault.sim.enforceLimits(LIMITS);
    const results = await world.rotation.rotationPass();
    return {
      rotated: results.filter((r) => r.outcome === 'rotated').length,
      throttled: vault.sim.stats.throttled,
      writes: vault.sim.calls('set'),
      redemptions: world.provider.refreshes.map((r) => r.refreshToken),
    };
  };

  it('meets 429s unpaced', async () => {
    const unpaced = await pass(false);
    expect(unpaced.throttled).toBeGreaterThan(0);
    expect(unpaced.rotated).toBeLessThan(ids.length);
    // Throttled or not, no refresh token was sent twice.
    expect(new Set(unpaced.redemptions).size).toBe(unpaced.redemptions.length);
  });

  it('meets none paced, and rotates every connection', async () => {
    const paced = await pass(true);
    expect(paced.throttled).toBe(0);
    expect(paced.rotated).toBe(ids.length);
    expect(paced.writes).toBe(ids.length);
    expect(new Set(paced.redemptions).size).toBe(ids.length);
  });
});

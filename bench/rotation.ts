/**
 * `npm run bench:rotation`: one rotation pass over many connections, against the Entra simulator
 * with a fixed latency per token call. Prints the pass's duration next to the lower bound the
 * concurrency implies (connections × latency / concurrency).
 *
 * The simulator runs in a child process (bench/entra-process.ts): in this process its RSA signing
 * and HTTP parsing would queue on the broker's event loop, a cost a real provider does not put there.
 *
 * `BENCH_STORE=keyvault` runs the pass on the Key Vault store against the Key Vault simulator
 * (HTTPS, in this process), which enforces Key Vault's documented limits; the store paces itself as
 * `KEY_VAULT_PACING` says (default 2000/150 per 10 s; `off` to see the 429s an unpaced pass meets).
 * It prints the 429s met and the bound pacing sets.
 *
 *   BENCH_CONNECTIONS (10000; 500 on Key Vault)  BENCH_LATENCY_MS (50)  ROTATION_CONCURRENCY (8)
 *   BENCH_STORE (file | keyvault)  KEY_VAULT_PACING (2000/150 | off)
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBroker } from '../src/lib/broker.js';
import { parseConnections } from '../src/lib/config/load.js';
import { loadSettings, type Settings } from '../src/lib/config/settings.js';
import { createLogger } from '../src/lib/logger.js';
import { mapWithConcurrency } from '../src/lib/rotation/pool.js';
import { FileSecretStore } from '../src/lib/store/file-store.js';
import type { SecretStore } from '../src/lib/store/secret-store.js';
import type { VaultPacer } from '../src/lib/store/vault-pacer.js';
import { startKeyVaultSimulator } from '../test/fakes/keyvault-simulator.js';
import { seedConnectedGrant } from '../test/support/simulator-grant.js';
import type { EntraProcessReply, EntraProcessRequest } from './entra-process.js';

const KEY_VAULT = process.env.BENCH_STORE === 'keyvault';
const COUNT = Number(process.env.BENCH_CONNECTIONS ?? (KEY_VAULT ? 500 : 10_000));
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 50);
const CONCURRENCY = Number(process.env.ROTATION_CONCURRENCY ?? 8);
const CLIENT_ID = 'b3a1c0de-0000-4000-8000-00000000be4c';
const SECRET = randomBytes(24).toString('base64url');
const REDIRECT = 'http://127.0.0.1:9/api/callback';

/** The simulator's process: `ask` sends one request and waits for the reply of that type. */
async function startEntra() {
  const child = fork(new URL('./entra-process.ts', import.meta.url), { stdio: 'inherit' });
  const ask = <T extends EntraProcessReply['type']>(
    message: EntraProcessRequest,
    type: T,
  ): Promise<Extract<EntraProcessReply, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (reply: EntraProcessReply) => {
        if (reply.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(reply as Extract<EntraProcessReply, { type: T }>);
      };
      const onExit = (code: number | null) => reject(new Error(`Entra simulator process exited (${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(message);
    });
  const { port } = await ask(
    { type: 'start', clientId: CLIENT_ID, secret: SECRET, redirectUri: REDIRECT, latencyMs: LATENCY_MS },
    'started',
  );
  return { authority: `http://127.0.0.1:${port}`, ask, stop: () => child.kill() };
}

/** Key Vault's documented limits for secrets, per vault and region in 10 s; the simulator enforces them. */
const VAULT_LIMITS = { transactionsPer10s: 4000, writesPer10s: 300 };

interface BenchStore {
  /** The broker's store, paced on Key Vault as `KEY_VAULT_PACING` says. */
  store: SecretStore;
  /** For seeding: on Key Vault an unpaced store on the same vault, limits not enforced yet. */
  seedStore: SecretStore;
  /** From here on the vault enforces its limits. */
  enforceLimits(): void;
  throttled(): number;
  pacer?: VaultPacer;
  close(): Promise<void>;
}

async function openBenchStore(settings: Settings): Promise<BenchStore> {
  if (!KEY_VAULT) {
    const store = await FileSecretStore.open(settings.dataDir);
    return {
      store,
      seedStore: store,
      enforceLimits() {},
      throttled: () => 0,
      close: () => rm(settings.dataDir, { recursive: true, force: true }),
    };
  }
  const vault = await startKeyVaultSimulator();
  const store = await vault.createStore({ pacing: settings.keyVaultPacing });
  return {
    store,
    seedStore: await vault.createStore({ pacing: false }),
    enforceLimits: () => vault.sim.enforceLimits(VAULT_LIMITS),
    throttled: () => vault.sim.stats.throttled,
    pacer: store.pacer,
    close: async () => {
      await vault.close();
      await rm(settings.dataDir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const entra = await startEntra();
  const { authority } = entra;
  const settings = loadSettings({
    BROKER_DATA_DIR: await mkdtemp(join(tmpdir(), 'broker-bench-rotation-')),
    ROTATION_CONCURRENCY: String(CONCURRENCY),
    KEY_VAULT_PACING: process.env.KEY_VAULT_PACING,
  });
  const bench = await openBenchStore(settings);
  try {
    const { store, seedStore } = bench;
    await seedStore.setSecret('bench-secret', SECRET);
    const ids = Array.from({ length: COUNT }, (_, i) => `c${i}`);

    // Seed: one real authorization-code grant per connection, through the simulator's protocol.
    const t0 = performance.now();
    const old = new Date(Date.now() - 2 * 86_400_000);
    await mapWithConcurrency(ids, 16, (id) =>
      seedConnectedGrant(
        seedStore,
        id,
        {
          authority,
          clientId: CLIENT_ID,
          clientSecret: SECRET,
          redirectUri: REDIRECT,
          account: `${id}@contoso.com`,
          scope: 'User.Read',
        },
        old,
      ),
    );
    const seedS = (performance.now() - t0) / 1000;

    const connections = Object.fromEntries(
      ids.map((id) => [
        id,
        {
          provider: 'entra',
          authority,
          tenant: 'organizations',
          clientId: CLIENT_ID,
          credential: { type: 'secret', secretName: 'bench-secret' },
          scopes: ['User.Read'],
        },
      ]),
    );
    const broker = await createBroker({
      settings,
      connections: parseConnections(JSON.stringify({ connections }), 'bench', settings),
      store,
      logger: createLogger(() => {}),
    });

    await entra.ask({ type: 'latency', on: true }, 'latency');
    bench.enforceLimits();
    const t1 = performance.now();
    const results = await broker.rotation.rotationPass();
    const passS = (performance.now() - t1) / 1000;
    const rotated = results.filter((r) => r.outcome === 'rotated').length;
    const bound = (COUNT * LATENCY_MS) / CONCURRENCY / 1000;
    const { redeemedTwice } = await entra.ask({ type: 'stats' }, 'stats');

    console.log(
      `node ${process.version}; ${store.kind} store; ${COUNT} connections; ${LATENCY_MS} ms per token call; concurrency ${CONCURRENCY}`,
    );
    console.log(`seeding (${COUNT} consents through the simulator + store writes): ${seedS.toFixed(1)} s`);
    console.log(
      `rotation pass: ${passS.toFixed(1)} s, ${rotated} rotated, ${results.length - rotated} other`,
    );
    console.log(
      `lower bound (connections × latency / concurrency): ${bound.toFixed(1)} s; ratio ${(passS / bound).toFixed(2)}`,
    );
    console.log(`refresh tokens redeemed more than once: ${redeemedTwice}`);
    if (KEY_VAULT) printVault(bench, passS, bound, settings);
  } finally {
    entra.stop();
    await bench.close();
  }
}

/**
 * The vault's side: 429s met, and the bound pacing sets. Per rotated connection the pass sends one
 * GET (the grant, under its lock) and one SET (the rotated token); the listing, one GET per 25.
 */
function printVault(bench: BenchStore, passS: number, latencyBound: number, settings: Settings): void {
  const pacing = settings.keyVaultPacing;
  console.log(
    `vault limits enforced (per 10 s): ${VAULT_LIMITS.transactionsPer10s} transactions, ${VAULT_LIMITS.writesPer10s} writes; 429s met: ${bench.throttled()}`,
  );
  if (!pacing || !bench.pacer) {
    console.log('pacing: off (KEY_VAULT_PACING=off)');
    return;
  }
  const transactions = 2 * COUNT + Math.ceil(COUNT / 25);
  // A sliding window lets `limit` go at once, the next `limit` 10 s later, and so on.
  const windows = (n: number, limit: number) => Math.floor((n - 1) / limit) * 10;
  const bound = Math.max(
    latencyBound,
    windows(COUNT, pacing.writesPer10s),
    windows(transactions, pacing.transactionsPer10s),
  );
  const { stats } = bench.pacer;
  console.log(
    `pacing ${pacing.transactionsPer10s}/${pacing.writesPer10s} per 10 s: ${stats.transactions} transactions, ${stats.waited} waited (${(stats.waitedMs / 1000).toFixed(1)} s in all)`,
  );
  console.log(
    `pacing bound (max of the latency bound, ${COUNT} writes at ${pacing.writesPer10s} per sliding 10 s, ${transactions} transactions at ${pacing.transactionsPer10s} per 10 s): ${bound.toFixed(1)} s; ratio ${(passS / bound).toFixed(2)}`,
  );
}

await main();

/**
 * `npm run bench:rotation`: one rotation pass over many connections, against the Entra simulator
 * with a fixed latency per token call. Prints the pass's duration next to the lower bound the
 * concurrency implies (connections × latency / concurrency).
 *
 * The simulator runs in a child process (bench/entra-process.ts): in this process its RSA signing
 * and HTTP parsing would queue on the broker's event loop, a cost a real provider does not put there.
 *
 *   BENCH_CONNECTIONS (10000)  BENCH_LATENCY_MS (50)  ROTATION_CONCURRENCY (8)
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBroker } from '../src/lib/broker.js';
import { parseConnections } from '../src/lib/config/load.js';
import { loadSettings } from '../src/lib/config/settings.js';
import { createLogger } from '../src/lib/logger.js';
import { mapWithConcurrency } from '../src/lib/rotation/pool.js';
import { FileSecretStore } from '../src/lib/store/file-store.js';
import type { EntraProcessReply, EntraProcessRequest } from './entra-process.js';

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 10_000);
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

async function main(): Promise<void> {
  const entra = await startEntra();
  const { authority } = entra;
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-bench-rotation-'));
  try {
    const store = await FileSecretStore.open(dataDir);
    await store.setSecret('bench-secret', SECRET);
    const ids = Array.from({ length: COUNT }, (_, i) => `c${i}`);

    // Seed: one real authorization-code grant per connection, through the simulator's protocol.
    const t0 = performance.now();
    const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
    await mapWithConcurrency(ids, 16, async (id) => {
      const refreshToken = await grant(authority, `${id}@contoso.com`);
      await store.setSecret(`rt-${id}`, refreshToken, {
        tags: { account: `${id}@contoso.com`, status: 'connected', consentedAt: old, refreshedAt: old },
      });
    });
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
    const settings = loadSettings({ BROKER_DATA_DIR: dataDir, ROTATION_CONCURRENCY: String(CONCURRENCY) });
    const broker = await createBroker({
      settings,
      connections: parseConnections(JSON.stringify({ connections }), 'bench', settings),
      store,
      logger: createLogger(() => {}),
    });

    await entra.ask({ type: 'latency', on: true }, 'latency');
    const t1 = performance.now();
    const results = await broker.rotation.rotationPass();
    const passS = (performance.now() - t1) / 1000;
    const rotated = results.filter((r) => r.outcome === 'rotated').length;
    const bound = (COUNT * LATENCY_MS) / CONCURRENCY / 1000;
    const { redeemedTwice } = await entra.ask({ type: 'stats' }, 'stats');

    console.log(
      `node ${process.version}; ${COUNT} connections; ${LATENCY_MS} ms per token call; concurrency ${CONCURRENCY}`,
    );
    console.log(`seeding (${COUNT} consents through the simulator + store writes): ${seedS.toFixed(1)} s`);
    console.log(
      `rotation pass: ${passS.toFixed(1)} s, ${rotated} rotated, ${results.length - rotated} other`,
    );
    console.log(
      `lower bound (connections × latency / concurrency): ${bound.toFixed(1)} s; ratio ${(passS / bound).toFixed(2)}`,
    );
    console.log(`refresh tokens redeemed more than once: ${redeemedTwice}`);
  } finally {
    entra.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Authorization code + PKCE against the simulator, as a browser and the broker would, minus the broker. */
async function grant(authority: string, account: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url');
  const params = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'User.Read offline_access openid profile',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    account,
    signin: 'Sign in',
  });
  const signIn = await fetch(`${authority}/organizations/oauth2/v2.0/authorize`, {
    method: 'POST',
    body: params,
    redirect: 'manual',
  });
  const code = new URL(signIn.headers.get('location')!).searchParams.get('code')!;
  const token = await fetch(`${authority}/organizations/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: CLIENT_ID,
      client_secret: SECRET,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }),
  });
  return ((await token.json()) as { refresh_token: string }).refresh_token;
}

await main();

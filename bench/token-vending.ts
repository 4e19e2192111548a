/**
 * `npm run bench`: what `/api/token` costs. Nothing here asserts a speed; the figures go in the README.
 *
 * 1. Throughput of cache hits, each server in its own child process and the load generator
 *    (autocannon) here: a bare node:http server answering the same body, the programming model's
 *    floor (`floor-servers.ts`), and the broker's embedded host as `npm start` runs it (log lines to
 *    a file). Runs alternate between the three and each keeps its best, so a busy machine hurts all
 *    three alike.
 * 2. Sequential latency against the same embedded host.
 * 3. In process: the token service's cache hit alone, and many callers on a cold cache (single flight).
 *
 * Knobs: BENCH_CONNECTIONS (32), BENCH_DURATION (s per run, 5), BENCH_WARMUP (s, 2), BENCH_ROUNDS (3),
 * BENCH_HITS (sequential requests, 5000), BENCH_COLD_CALLERS (200), BENCH_PROFILE (a folder: the
 * embedded host runs with `--cpu-prof` and leaves its profile there).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { FileSecretStore } from '../src/lib/store/file-store.js';
import { CLIENT_ID, CLIENT_SECRET_NAME, FUNCTION_KEY, startStack } from '../test/e2e/harness.js';
import { consent } from '../test/fakes/consent-client.js';
import { startEntraSimulator } from '../test/fakes/entra.js';
import { freePort } from '../test/support/net.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HITS = Number(process.env.BENCH_HITS ?? 5000);
const COLD_CALLERS = Number(process.env.BENCH_COLD_CALLERS ?? 200);
const PROFILE_DIR = process.env.BENCH_PROFILE;

const root = fileURLToPath(new URL('..', import.meta.url));
const TOKEN_PATH = '/api/token?connection=support';

interface Server {
  name: string;
  url: string;
  child: ChildProcess;
}

/** A child on tsx, like `npm run bench` itself, so the source is measured without a build step. */
async function launch(
  name: string,
  script: string,
  env: Record<string, string>,
  stdio: ['ignore', number | 'ignore', number | 'inherit'],
  nodeArgs: string[] = [],
): Promise<Server> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, script)], {
    cwd: root,
    env: { ...process.env, ...env, PORT: port },
    stdio,
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening`);
    try {
      await (await fetch(url)).arrayBuffer();
      return { name, url, child };
    } catch {
      if (Date.now() > deadline) throw new Error(`${name} did not listen within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  await exited;
}

interface Run {
  rps: number;
  ok: number;
  bad: number;
}

async function load(url: string, seconds: number): Promise<Run> {
  const result = await autocannon({
    url: `${url}${TOKEN_PATH}`,
    headers: { 'x-functions-key': FUNCTION_KEY },
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
  });
  return {
    rps: result['2xx'] / result.duration,
    ok: result['2xx'],
    bad: result.non2xx + result.errors + result.timeouts,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Part 1 and 2: three servers in child processes. */
async function overHttp(): Promise<void> {
  const { sim, url: simUrl, close: closeSim } = await startEntraSimulator({ clients: [] });
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-bench-'));
  const servers: Server[] = [];
  try {
    const clientSecret = `bench-secret-${Math.random().toString(36).slice(2)}`;
    const store = await FileSecretStore.open(dataDir);
    await store.setSecret(CLIENT_SECRET_NAME, clientSecret);
    const logFile = join(dataDir, 'host.log');
    const log = await open(logFile, 'w');
    const brokerPort = await freePort();
    const brokerUrl = `http://127.0.0.1:${brokerPort}`;
    sim.registerClient({
      clientId: CLIENT_ID,
      secret: clientSecret,
      redirectUris: [`${brokerUrl}/api/callback`],
    });
    const connections = {
      support: {
        provider: 'entra',
        authority: simUrl,
        tenant: 'organizations',
        clientId: CLIENT_ID,
        credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
        scopes: ['https://graph.microsoft.com/User.Read'],
      },
    };
    // `npm start`'s entry with its own settings; its log lines go to a file, as a service's would.
    const brokerEnv = {
      BROKER_CONNECTIONS: JSON.stringify({ connections }),
      BROKER_DATA_DIR: dataDir,
      BROKER_PUBLIC_URL: brokerUrl,
      BROKER_FUNCTION_KEY: FUNCTION_KEY,
      PORT: String(brokerPort),
    };
    const profileArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
    const broker = await launch(
      'broker',
      'src/local/main.ts',
      brokerEnv,
      ['ignore', log.fd, log.fd],
      profileArgs,
    );
    servers.push(broker);

    const consented = await consent(brokerUrl, FUNCTION_KEY, 'support', { account: 'bench@contoso.com' });
    if (consented.status !== 200) throw new Error(`consent answered ${consented.status}`);
    const first = await fetch(`${brokerUrl}${TOKEN_PATH}`, { headers: { 'x-functions-key': FUNCTION_KEY } });
    const body = await first.text();
    if (first.status !== 200) throw new Error(`/api/token answered ${first.status}: ${body}`);

    const stdio: ['ignore', 'ignore', 'inherit'] = ['ignore', 'ignore', 'inherit'];
    servers.push(
      await launch('bare', 'bench/floor-servers.ts', { BENCH_SERVER: 'bare', BENCH_BODY: body }, stdio),
    );
    servers.push(
      await launch('floor', 'bench/floor-servers.ts', { BENCH_SERVER: 'floor', BENCH_BODY: body }, stdio),
    );
    const [, bare, floor] = servers as [Server, Server, Server];
    const order = [bare, floor, broker];

    let answered = 0;
    let bad = 0;
    for (const s of order) {
      const w = await load(s.url, WARMUP);
      bad += w.bad;
      if (s === broker) answered += w.ok;
    }
    const runs = new Map<Server, number[]>(order.map((s) => [s, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of order) {
        const r = await load(s.url, DURATION);
        runs.get(s)!.push(r.rps);
        bad += r.bad;
        if (s === broker) answered += r.ok;
      }
    }
    const best = (s: Server) => Math.max(...runs.get(s)!);

    // Sequential latency, one request at a time against the same host.
    const upstreamBefore = sim.stats.tokenRequests;
    const latencies: number[] = [];
    for (let i = 0; i < HITS; i++) {
      const t = performance.now();
      const res = await fetch(`${brokerUrl}${TOKEN_PATH}`, { headers: { 'x-functions-key': FUNCTION_KEY } });
      await res.arrayBuffer();
      latencies.push(performance.now() - t);
      if (res.status !== 200) bad++;
      else answered++;
    }
    latencies.sort((a, b) => a - b);
    const upstream = sim.stats.tokenRequests - upstreamBefore;

    await Promise.all(servers.map(stop));
    await log.close();
    const lines = (await readFile(logFile, 'utf8')).split('\n');
    const count = (pattern: string) => lines.filter((l) => l.includes(pattern)).length;
    const hostLines = count('"event":"local_host.request","function":"token"');
    const vendLines = count('"event":"token.vended"');

    const [b, f, h] = [best(bare), best(floor), best(broker)];
    console.log(
      `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}; autocannon here, each server in its own process`,
    );
    console.log(
      `/api/token cache hits, ${CONNECTIONS} connections, keep-alive, ${WARMUP} s warm-up, best of ${ROUNDS} alternating ${DURATION} s runs:`,
    );
    console.log(`  bare node:http, same body          ${fmt(b).padStart(8)} requests/s`);
    console.log(`  programming-model floor            ${fmt(f).padStart(8)} requests/s`);
    console.log(`  broker's embedded host             ${fmt(h).padStart(8)} requests/s`);
    console.log(
      `  broker ÷ floor: ${(h / f).toFixed(2)} (target ≥ 0.9); broker ÷ bare: ${(h / b).toFixed(2)}`,
    );
    for (const s of order) console.log(`  ${s.name} runs: ${runs.get(s)!.map(fmt).join(', ')}`);
    console.log(`answers other than 200 (or errors, timeouts): ${bad}`);
    console.log(
      `host log: ${hostLines} local_host.request and ${vendLines} token.vended lines for ${answered} answers the client counted (it stops counting before the last answers arrive)`,
    );
    console.log(
      `cache hit over HTTP, sequential: p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms`,
    );
    console.log(`upstream token requests during ${HITS} sequential cache hits: ${upstream}`);
    if (bad > 0) process.exitCode = 1;
  } finally {
    await Promise.all(servers.map(stop));
    await closeSim();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Part 3: in process, no HTTP. */
async function inProcess(): Promise<void> {
  const stack = await startStack({ connections: { support: {} } });
  try {
    await consent(stack.url, stack.local.functionKey, 'support', { account: 'bench@contoso.com' });
    const call = () => stack.api(TOKEN_PATH).then((r) => r.arrayBuffer());
    await call();

    const tokens = stack.local.broker.tokens;
    const n = 200_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await tokens.getAccessToken('support');
    const serviceNs = ((performance.now() - t0) * 1e6) / n;

    tokens.invalidate('support');
    const refreshBefore = stack.sim.stats.byGrant.refresh_token ?? 0;
    const t1 = performance.now();
    await Promise.all(Array.from({ length: COLD_CALLERS }, call));
    const coldMs = performance.now() - t1;
    const refreshes = (stack.sim.stats.byGrant.refresh_token ?? 0) - refreshBefore;

    console.log(`cache hit in process (TokenService.getAccessToken): ${Math.round(serviceNs)} ns`);
    console.log(
      `${COLD_CALLERS} concurrent callers on a cold cache: ${refreshes} upstream refresh, all answered in ${coldMs.toFixed(0)} ms`,
    );
  } finally {
    await stack.close();
  }
}

await overHttp();
await inProcess();

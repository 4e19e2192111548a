/**
 * Memory of the embedded host with many connections (issue 18, target 4). The host runs as
 * `npm start` does (the compiled dist/src/local/main.js) in a child process of its own, so the RSS
 * printed is the host's alone; the Entra simulator and the client run here. Before each reading the
 * child collects garbage (`--expose-gc`) and answers `process.memoryUsage()` over IPC.
 *
 * Readings: start-up with no connections (the sandbox is served, as `npm start` does then), start-up
 * with BENCH_CONNECTIONS configured (each with a grant in the store), after one `/api/token` per
 * connection (every one refreshed and cached), after a second round (all cache hits: must not grow),
 * and after a hostile round of BENCH_HOSTILE requests, each with something distinct that a careless
 * per-key structure would remember (must stay about flat).
 *
 *   BENCH_CONNECTIONS (10000)  BENCH_HOSTILE (100000)  BENCH_CONCURRENCY (16)  BENCH_SKIP_BUILD (unset)
 *   BENCH_HEAP_SNAPSHOTS (a folder: a heap snapshot of the host at every reading)
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { consentCookieName } from '../src/lib/consent/consent-service.js';
import { mapWithConcurrency } from '../src/lib/rotation/pool.js';
import { FileSecretStore } from '../src/lib/store/file-store.js';
import { type EntraFake, startEntraSimulator } from '../test/fakes/entra.js';
import { buildHost, startProbedHost } from './probed-host.js';

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 10_000);
const HOSTILE = Number(process.env.BENCH_HOSTILE ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const HOSTILE_WARMUP = 5_000;
/** A folder: a heap snapshot of the host is written there at every reading (for Chrome DevTools). */
const SNAPSHOTS = process.env.BENCH_HEAP_SNAPSHOTS;
let readingNo = 0;
const CLIENT_ID = 'b3a1c0de-0000-4000-8000-000000004e40';
const SECRET = randomBytes(24).toString('base64url');
const FUNCTION_KEY = randomBytes(24).toString('base64url');

interface Reading {
  step: string;
  rss: number;
  heapUsed: number;
  external: number;
}

async function main(): Promise<void> {
  buildHost();
  const idp = await startEntraSimulator({
    clients: [{ clientId: CLIENT_ID, secret: SECRET, redirectUris: ['http://127.0.0.1:9/api/callback'] }],
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-bench-memory-'));
  const readings: Reading[] = [];
  try {
    // 1. No connections: the host serves its sandbox, as `npm start` does on a fresh checkout.
    const empty = await startHost({ dataDir: join(dataDir, 'empty'), connectionsFile: undefined });
    readings.push({ step: 'start-up, no connections (sandbox)', ...(await empty.memory()) });
    await empty.stop();

    // 2. COUNT connections, each with a grant in the store, seeded here through the store's own API.
    const hostDir = join(dataDir, 'host');
    const store = await FileSecretStore.open(hostDir);
    await store.setSecret('bench-secret', SECRET);
    const ids = Array.from({ length: COUNT }, (_, i) => `c${i}`);
    const t0 = performance.now();
    const now = new Date().toISOString();
    await mapWithConcurrency(ids, CONCURRENCY, async (id) => {
      const refreshToken = idp.sim.seedGrant(CLIENT_ID, `${id}@contoso.com`, ['User.Read']);
      await store.setSecret(`rt-${id}`, refreshToken, {
        tags: { account: `${id}@contoso.com`, status: 'connected', consentedAt: now, refreshedAt: now },
      });
    });
    const seedS = (performance.now() - t0) / 1000;
    const connectionsFile = join(dataDir, 'connections.json');
    const connection = {
      provider: 'entra',
      authority: idp.url,
      tenant: 'organizations',
      clientId: CLIENT_ID,
      credential: { type: 'secret', secretName: 'bench-secret' },
      scopes: ['User.Read'],
    };
    await writeFile(
      connectionsFile,
      JSON.stringify({ connections: Object.fromEntries(ids.map((id) => [id, connection])) }),
    );
    const host = await startHost({ dataDir: hostDir, connectionsFile });
    try {
      readings.push({ step: `start-up, ${COUNT} connections configured`, ...(await host.memory()) });

      const t1 = performance.now();
      const first = await round(host, ids.length, (i) => ({ path: `/api/token?connection=${ids[i]}` }));
      const firstS = (performance.now() - t1) / 1000;
      expectAll(first, 200, 'first round');
      readings.push({ step: 'every connection has a cached token', ...(await host.memory()) });

      const second = await round(host, ids.length, (i) => ({ path: `/api/token?connection=${ids[i]}` }));
      expectAll(second, 200, 'second round');
      readings.push({ step: 'after a second round (cache hits)', ...(await host.memory()) });

      // A few of each first, so the error paths' code is loaded and compiled before the baseline.
      await round(host, HOSTILE_WARMUP, (i) => hostileRequest(HOSTILE + i, ids));
      readings.push({ step: `after ${HOSTILE_WARMUP} hostile requests (warm-up)`, ...(await host.memory()) });
      const t2 = performance.now();
      const hostile = await round(host, HOSTILE, (i) => hostileRequest(i, ids));
      const hostileS = (performance.now() - t2) / 1000;
      if (hostile.has(200) || hostile.has(500)) throw new Error(`hostile round: ${describe(hostile)}`);
      readings.push({ step: `after ${HOSTILE} hostile requests`, ...(await host.memory()) });

      const third = await round(host, ids.length, (i) => ({ path: `/api/token?connection=${ids[i]}` }));
      expectAll(third, 200, 'round after the hostile one');
      readings.push({ step: 'after a third round (cache hits)', ...(await host.memory()) });

      report(readings, {
        seedS,
        firstS,
        hostileS,
        hostileStatuses: describe(hostile),
        tokenRequests: idp.sim.stats.byGrant.refresh_token ?? 0,
      });
    } finally {
      await host.stop();
    }
    await hostileBearers(idp, hostDir, connection, ids.slice(0, 10));
  } finally {
    await idp.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * With `CALLER_AUTH=entra` the bearer token is request input too: the same host, ten connections
 * listing one caller, and HOSTILE requests each with a distinct token: garbage, a JWT naming a key
 * the tenant does not have, or (one in ten) a token the tenant really signed for a caller no
 * connection lists.
 */
async function hostileBearers(
  idp: EntraFake,
  dataDir: string,
  connection: object,
  ids: string[],
): Promise<void> {
  const api = 'b3a1c0de-0000-4000-8000-0000000000a1';
  const caller = 'b3a1c0de-0000-4000-8000-0000000000c1';
  const tenant = '72f988bf-0000-4000-8000-000000005eed';
  const connectionsFile = join(dataDir, 'connections-entra.json');
  const callers = [{ name: 'bench-caller', objectId: caller }];
  await writeFile(
    connectionsFile,
    JSON.stringify({ connections: Object.fromEntries(ids.map((id) => [id, { ...connection, callers }])) }),
  );
  const now = Math.floor(Date.now() / 1000);
  const token = (oid: string) =>
    idp.sim.signToken({
      iss: `${idp.url}/${tenant}/v2.0`,
      aud: api,
      tid: tenant,
      oid,
      // An app token's `sub` is its `oid` (the verifier refuses an ID token, whose `sub` is pairwise).
      sub: oid,
      idtyp: 'app',
      roles: ['Token.Request'],
      iat: now,
      nbf: now,
      exp: now + 3600,
      ver: '2.0',
    });
  const forged = (i: number) => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const kid = `${i.toString(36)}${randomBytes(8).toString('hex')}`;
    return `${part({ alg: 'RS256', typ: 'JWT', kid })}.${part({ iss: `${idp.url}/${tenant}/v2.0`, aud: api, tid: tenant, oid: randomUUID() })}.${randomBytes(256).toString('base64url')}`;
  };
  const bearer = (i: number) => {
    if (i % 10 === 0) return token(randomUUID());
    return i % 2 === 0 ? forged(i) : `${randomBytes(24).toString('base64url')}.${i}`;
  };
  const host = await startHost({
    dataDir,
    connectionsFile,
    env: {
      CALLER_AUTH: 'entra',
      BROKER_TENANT_ID: tenant,
      BROKER_API_CLIENT_ID: api,
      BROKER_AUTHORITY: idp.url,
    },
  });
  try {
    const good = token(caller);
    const allowed = await round(host, ids.length, (i) => ({
      path: `/api/token?connection=${ids[i]}`,
      headers: { authorization: `Bearer ${good}` },
    }));
    expectAll(allowed, 200, 'the listed caller');
    const request = (i: number) => ({
      path: `/api/token?connection=${ids[i % ids.length]}`,
      headers: { authorization: `Bearer ${bearer(i)}` },
    });
    await round(host, HOSTILE_WARMUP, (i) => request(HOSTILE + i));
    const warm = await host.memory();
    const t0 = performance.now();
    const hostile = await round(host, HOSTILE, request);
    const seconds = (performance.now() - t0) / 1000;
    if (hostile.has(200) || hostile.has(500)) throw new Error(`hostile bearers: ${describe(hostile)}`);
    const after = await host.memory();
    console.log(
      `CALLER_AUTH=entra, ${HOSTILE} distinct bearer tokens (${seconds.toFixed(1)} s: ${describe(hostile)}): ` +
        `heap ${mb(warm.heapUsed)} → ${mb(after.heapUsed)} (${signed(after.heapUsed - warm.heapUsed)}, ` +
        `${((after.heapUsed - warm.heapUsed) / HOSTILE).toFixed(1)} B per request), ` +
        `RSS ${mb(warm.rss)} → ${mb(after.rss)} (${signed(after.rss - warm.rss)}); ` +
        `tenant key fetches: ${idp.sim.stats.keyRequests}`,
    );
  } finally {
    await host.stop();
  }
}

/**
 * One request per distinct hostile input, in turn: an unknown connection id, a scope outside the
 * policy, a forged consent state (with a cookie of the right name), a forged device poll attempt,
 * a wrong function key. None may leave anything behind.
 */
function hostileRequest(i: number, ids: string[]): { path: string; headers?: Record<string, string> } {
  const known = ids[i % ids.length]!;
  const nonce = `${i.toString(36)}${randomBytes(6).toString('hex')}`;
  switch (i % 5) {
    case 0:
      return { path: `/api/token?connection=u-${nonce}` };
    case 1:
      return {
        path: `/api/token?connection=${known}&scope=${encodeURIComponent(`https://x.example/${nonce}/.default`)}`,
      };
    case 2:
      return {
        path: `/api/callback?state=${nonce}&code=${nonce}`,
        headers: { cookie: `${consentCookieName(nonce)}=${randomBytes(48).toString('base64url')}` },
      };
    case 3:
      return { path: `/api/start/poll?connection=${known}&attempt=${randomBytes(48).toString('base64url')}` };
    default:
      return { path: `/api/token?connection=${known}`, headers: { 'x-functions-key': `wrong-${nonce}` } };
  }
}

interface Host {
  url: string;
  memory(): Promise<Omit<Reading, 'step'>>;
  stop(): Promise<void>;
}

/** The probed host; each reading is written as a heap snapshot too with BENCH_HEAP_SNAPSHOTS. */
async function startHost(options: {
  dataDir: string;
  connectionsFile: string | undefined;
  env?: NodeJS.ProcessEnv;
}): Promise<Host> {
  const host = await startProbedHost({ ...options, functionKey: FUNCTION_KEY });
  return {
    url: host.url,
    async memory() {
      const snapshot = SNAPSHOTS ? join(SNAPSHOTS, `${Date.now()}-${++readingNo}.heapsnapshot`) : undefined;
      const { rss, heapUsed, external } = await host.memory(snapshot);
      return { rss, heapUsed, external };
    },
    stop: () => host.stop(),
  };
}

/** `count` GETs against the host, CONCURRENCY at a time over kept-alive sockets; statuses counted. */
async function round(
  host: Host,
  count: number,
  request: (i: number) => { path: string; headers?: Record<string, string> },
): Promise<Map<number, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const { path, headers } = request(next++);
      const status = await get(agent, `${host.url}${path}`, { 'x-functions-key': FUNCTION_KEY, ...headers });
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
  return statuses;
}

function get(agent: http.Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

function expectAll(statuses: Map<number, number>, status: number, what: string): void {
  if (statuses.size !== 1 || !statuses.has(status)) throw new Error(`${what}: ${describe(statuses)}`);
}

const describe = (statuses: Map<number, number>) =>
  [...statuses]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${n}× ${s}`)
    .join(', ');

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const signed = (bytes: number) => `${bytes >= 0 ? '+' : '−'}${mb(Math.abs(bytes))}`;

function report(
  r: Reading[],
  run: { seedS: number; firstS: number; hostileS: number; hostileStatuses: string; tokenRequests: number },
): void {
  const [empty, configured, cached, second, warm, hostile, third] = r as [
    Reading,
    Reading,
    Reading,
    Reading,
    Reading,
    Reading,
    Reading,
  ];
  console.log(
    `node ${process.version}; ${cpus().length} cores; host: dist/src/local/main.js in a child, --expose-gc, file store`,
  );
  console.log(
    `seeding ${COUNT} grants: ${run.seedS.toFixed(1)} s; first round (${COUNT} refreshes): ${run.firstS.toFixed(1)} s; ` +
      `refresh_token calls seen by the simulator: ${run.tokenRequests}`,
  );
  console.log('');
  console.log('step                                        RSS        heap used   external');
  for (const x of r) {
    console.log(`${x.step.padEnd(44)}${mb(x.rss).padEnd(11)}${mb(x.heapUsed).padEnd(12)}${mb(x.external)}`);
  }
  console.log('');
  const per = (a: number, b: number) => `${Math.round((b - a) / COUNT)} B`;
  console.log(
    `per connection, configured (start-up ${COUNT} vs none): heap ${per(empty.heapUsed, configured.heapUsed)}, RSS ${per(empty.rss, configured.rss)}`,
  );
  console.log(
    `per connection, its cached token (after round 1 vs start-up): heap ${per(configured.heapUsed, cached.heapUsed)}, RSS ${per(configured.rss, cached.rss)}`,
  );
  console.log(
    `per connection, all told (after round 1 vs none): heap ${per(empty.heapUsed, cached.heapUsed)}, RSS ${per(empty.rss, cached.rss)}`,
  );
  console.log(
    `second round (cache hits): heap ${signed(second.heapUsed - cached.heapUsed)}, RSS ${signed(second.rss - cached.rss)}`,
  );
  console.log(
    `hostile round (${HOSTILE} requests in ${run.hostileS.toFixed(1)} s: ${run.hostileStatuses}): heap ${signed(hostile.heapUsed - warm.heapUsed)} ` +
      `(${((hostile.heapUsed - warm.heapUsed) / HOSTILE).toFixed(1)} B per request), RSS ${signed(hostile.rss - warm.rss)} after the warm-up`,
  );
  console.log(
    `third round (cache hits, after the hostile one): heap ${signed(third.heapUsed - hostile.heapUsed)}, RSS ${signed(third.rss - hostile.rss)}`,
  );
}

await main();

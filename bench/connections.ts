/**
 * `npm run bench:connections`: many managed connections on one template (issue 24). The embedded
 * host (the compiled dist/src/local/main.js, as `npm start` runs it) in a child process of its own,
 * the Entra simulator and the clients here. BENCH_STORE `file` (the default): the embedded file
 * stores and the in-process lock. `azurite`: Azurite's blob and table services in processes of
 * their own and `AzureWebJobsStorage` pointing at them, so the host keeps definitions in Table
 * Storage and takes the refresh lock as a blob lease, as a Functions deployment does; refresh tokens
 * stay on the embedded file store (no Key Vault here). Azurite's in-memory table walks a partition
 * for each point read and insert, so its requests slow down as the table grows: up to ~30,000
 * connections is practical there (docs/performance.md). It reports:
 *
 * - start-up to ready (the "listening" line) with BENCH_CONNECTIONS managed connections stored, and
 *   that it listed none of them to get there (the catalog reads them on first use);
 * - the first page of `/api/status` (the HTML page, and JSON `?top=200`) and of `/api/connections`,
 *   the first time and after (median of 5); a first status page answered while the host counts
 *   (no digest yet) is followed by reloads until it has counted, and that time is reported too;
 * - heap per connection with a cached token: one `/api/token` per connection, then (heap now − heap
 *   of the host started with none) ÷ connections, after two full collections (`--expose-gc`); taken
 *   without the status page's kept list (a write on the instance drops it: one connection is put
 *   and deleted first), then again with it (after the status page is asked for once more);
 * - BENCH_PUTS PUTs of new connections through the API, BENCH_CLIENTS at a time: PUTs per second.
 *
 *   BENCH_STORE (file | azurite)  BENCH_CONNECTIONS (100000)  BENCH_PUTS (1000)  BENCH_CLIENTS (8)
 *   BENCH_SEED_CONCURRENCY (16 on files, 32 on Azurite)  BENCH_SKIP_BUILD (unset)
 *   BENCH_HEAP_SNAPSHOT (a file: the host's heap once every token is cached)
 *   BENCH_TOKENS (1; 0 skips the token round and the heap figures: Azurite's blob service walks
 *   every lease blob per lease, so 100,000 first refreshes there take over an hour)
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HostStorage } from '../src/lib/config/settings.js';
import type { DefinitionStore } from '../src/lib/definitions/definition-store.js';
import { openDefinitions } from '../src/lib/definitions/open-definitions.js';
import { mapWithConcurrency } from '../src/lib/rotation/pool.js';
import { FileSecretStore } from '../src/lib/store/file-store.js';
import { startEntraSimulator } from '../test/fakes/entra.js';
import { type Azurite, startAzurite } from '../test/support/azurite.js';
import { buildHost, type ProbedHost, startProbedHost } from './probed-host.js';

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 100_000);
const PUTS = Number(process.env.BENCH_PUTS ?? 1000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const STORE = process.env.BENCH_STORE ?? 'file';
const TOKENS = process.env.BENCH_TOKENS !== '0';
if (STORE !== 'azurite' && STORE !== 'file') throw new Error('BENCH_STORE is azurite or file');
const SEED_CONCURRENCY = Number(process.env.BENCH_SEED_CONCURRENCY ?? (STORE === 'azurite' ? 32 : 16));
const TOKEN_CONCURRENCY = 16;
const CLIENT_ID = 'b3a1c0de-0000-4000-8000-0000000c0e24';
const SECRET = randomBytes(24).toString('base64url');
const FUNCTION_KEY = randomBytes(24).toString('base64url');

/** A file: a heap snapshot of the host once every token is cached (for Chrome DevTools). */
const SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT;

/** The status page's words while an instance reads every connection for the first time. */
const COUNTING = /reading every connection for the first time/;
/** Its words on page 1 served from the digest (another instance's counts) while it reads them. */
const COUNTED_BEFORE = /Counts as of/;

const ids = Array.from({ length: COUNT }, (_, i) => `desk-${i}`);

async function main(): Promise<void> {
  buildHost();
  const idp = await startEntraSimulator({
    clients: [{ clientId: CLIENT_ID, secret: SECRET, redirectUris: ['http://127.0.0.1:9/api/callback'] }],
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-bench-connections-'));
  // Azurite in memory: the definitions table starts empty, so the empty host below sees none.
  const azurite: Azurite | undefined = STORE === 'azurite' ? await startAzurite({ tables: true }) : undefined;
  const hostStorage: HostStorage | undefined = azurite && {
    kind: 'connectionString',
    connectionString: azurite.connectionString,
  };
  // One declared connection, so the host does not serve its sandbox; everything else is managed.
  const connectionsFile = join(dataDir, 'connections.json');
  const template = {
    provider: 'entra',
    authority: idp.url,
    tenant: 'organizations',
    clientId: CLIENT_ID,
    credential: { type: 'secret', secretName: 'bench-secret' },
    scopes: ['User.Read'],
  };
  await writeFile(connectionsFile, JSON.stringify({ connections: { declared: template } }));
  try {
    const emptyDir = join(dataDir, 'empty');
    const empty = await startHost(emptyDir, connectionsFile, azurite);
    const base = await empty.memory();
    await empty.stop();

    // Seeded through the stores' own APIs: the template, COUNT definitions, COUNT connected grants.
    const hostDir = join(dataDir, 'host');
    const secrets = await FileSecretStore.open(hostDir);
    // The store the host opens for these settings: Table Storage on Azurite, or the data folder.
    const definitions: DefinitionStore = await openDefinitions({ dataDir: hostDir, hostStorage }, Date);
    await secrets.setSecret('bench-secret', SECRET);
    const by = { name: 'bench' };
    await definitions.put('template', 'mail', template, by);
    const t0 = performance.now();
    const now = new Date().toISOString();
    let seeded = 0;
    await mapWithConcurrency(ids, SEED_CONCURRENCY, async (id) => {
      // Create-only, as `If-None-Match: *`: no read before the write.
      await definitions.put(
        'connection',
        id,
        { template: 'mail', expectedAccount: `${id}@contoso.com` },
        by,
        { ifNoneMatch: '*' },
      );
      const refreshToken = idp.sim.seedGrant(CLIENT_ID, `${id}@contoso.com`, ['User.Read']);
      await secrets.setSecret(`rt-${id}`, refreshToken, {
        tags: { account: `${id}@contoso.com`, status: 'connected', consentedAt: now, refreshedAt: now },
      });
      progress('seeded', ++seeded, t0);
    });
    const seedS = (performance.now() - t0) / 1000;

    const started = performance.now();
    const host = await startHost(hostDir, connectionsFile, azurite);
    const readyMs = performance.now() - started;
    try {
      const atStart = await host.memory();
      const firstStatus = await timed(() => call(host, '/api/status', 'GET', { accept: 'text/html' }));
      // Never counted (no digest yet): page 1 is the first 200 by id while the host reads every
      // connection; reloaded until it has, so the figures below are of a counted instance as before.
      let countedMs: number | undefined;
      if (COUNTING.test(firstStatus.body)) {
        const from = performance.now() - firstStatus.ms;
        await untilCounted(host);
        countedMs = performance.now() - from;
      }
      const firstConnections = await timed(() => call(host, '/api/connections'));
      const status = await median(() => call(host, '/api/status', 'GET', { accept: 'text/html' }));
      const statusJson = await median(() => call(host, '/api/status?top=200'));
      const connections = await median(() => call(host, '/api/connections'));
      const lastPage = await median(() =>
        call(host, `/api/status?page=${Math.ceil((COUNT + 1) / 200)}`, 'GET', { accept: 'text/html' }),
      );
      const search = await median(() =>
        call(host, '/api/status?q=desk-4242', 'GET', { accept: 'text/html' }),
      );

      const t1 = performance.now();
      if (TOKENS) await roundOf(host, COUNT, (i) => `/api/token?connection=${ids[i]}`);
      const tokensS = (performance.now() - t1) / 1000;
      // The status page keeps every connection's health for up to 30 s once asked (health-cache.ts),
      // and drops it on this instance's own writes: one put and delete, so the heap below is the
      // connections and their tokens, not the page's list (measured next, on its own).
      const probe = '/api/connections/heap-probe';
      const json = { 'content-type': 'application/json' };
      await expectStatus(call(host, probe, 'PUT', json, JSON.stringify({ template: 'mail' })), 201);
      await expectStatus(call(host, probe, 'DELETE'), 204);
      const cached = await host.memory(SNAPSHOT);
      const statusAfter = await median(() => call(host, '/api/status', 'GET', { accept: 'text/html' }));
      // The write above dropped the list: page 1 came from the digest while it is read again.
      await untilCounted(host);
      const withList = await host.memory();

      const t2 = performance.now();
      let next = 0;
      const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
      const body = JSON.stringify({ template: 'mail' });
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < PUTS) {
            const id = `put-${next++}`;
            const r = await call(
              host,
              `/api/connections/${id}`,
              'PUT',
              { 'content-type': 'application/json' },
              body,
              agent,
            );
            if (r.status !== 201) throw new Error(`PUT ${id}: ${r.status} ${r.body}`);
          }
        }),
      );
      agent.destroy();
      const putS = (performance.now() - t2) / 1000;

      // A second instance on the same stores, started now: page 1 from the digest the first wrote.
      const second = await startHost(hostDir, connectionsFile, azurite);
      let secondStatus: Awaited<ReturnType<typeof timed>>;
      let secondAgain: Awaited<ReturnType<typeof timed>>;
      let secondJson: Awaited<ReturnType<typeof timed>>;
      let secondConnections: Awaited<ReturnType<typeof timed>>;
      try {
        secondStatus = await timed(() => call(second, '/api/status', 'GET', { accept: 'text/html' }));
        secondAgain = await timed(() => call(second, '/api/status', 'GET', { accept: 'text/html' }));
        secondJson = await timed(() => call(second, '/api/status?top=200'));
      } finally {
        await second.stop();
      }
      // A third instance asked for the admin page first: one store query (its catalog holds none).
      const third = await startHost(hostDir, connectionsFile, azurite);
      try {
        secondConnections = await timed(() => call(third, '/api/connections'));
      } finally {
        await third.stop();
      }

      const ms = (x: number) => `${x.toFixed(0)} ms`;
      console.log(
        `node ${process.version}; ${cpus().length} cores; ${STORE === 'azurite' ? 'Azurite (definitions in Table Storage, blob lease lock), refresh tokens on the file store' : 'file stores'}; ${COUNT} managed connections on one template`,
      );
      console.log(`seeding ${COUNT} definitions + grants: ${seedS.toFixed(1)} s`);
      console.log(`start-up to ready: ${ms(readyMs)} (host log: ${host.listed()})`);
      console.log(
        `first /api/status page (HTML), first request: ${ms(firstStatus.ms)} (${firstStatus.status}, ${firstStatus.bytes} bytes, ${countedMs === undefined ? 'counted' : `counting: the first 200 by id; the full page after ${(countedMs / 1000).toFixed(1)} s`})`,
      );
      console.log(`first /api/connections page, first request: ${ms(firstConnections.ms)}`);
      console.log(
        `/api/status page 1 (HTML), median of 5: ${ms(status)}; after every token cached: ${ms(statusAfter)}`,
      );
      console.log(`/api/status?top=200 (JSON), median of 5: ${ms(statusJson)}`);
      console.log(
        `second instance started after: /api/status page 1 (HTML), first request ${ms(secondStatus.ms)} (${/Counts as of/.test(secondStatus.body) ? 'counts from the digest' : 'counted itself'}), then ${ms(secondAgain.ms)} (${/Counts as of/.test(secondAgain.body) ? 'from the digest' : 'counted itself'}); /api/status?top=200 first request ${ms(secondJson.ms)}`,
      );
      console.log(`/api/status last page: ${ms(lastPage)}; search q=desk-4242: ${ms(search)}`);
      console.log(
        `another instance started after: /api/connections page 1, first request ${ms(secondConnections.ms)}`,
      );
      console.log(`/api/connections page 1 (top 100), median of 5: ${ms(connections)}`);
      const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
      if (TOKENS) console.log(`${COUNT} /api/token (refresh + cache): ${tokensS.toFixed(1)} s`);
      if (TOKENS)
        console.log(
          `heap: empty host ${mb(base.heapUsed)}, ${COUNT} stored at start-up ${mb(atStart.heapUsed)}, every token cached ${mb(cached.heapUsed)}`,
        );
      if (TOKENS)
        console.log(
          `heap per connection with a cached token: ${((cached.heapUsed - base.heapUsed) / COUNT / 1024).toFixed(2)} KB (RSS ${((cached.rss - base.rss) / COUNT / 1024).toFixed(1)} KB)`,
        );
      if (TOKENS)
        console.log(
          `the same with the status page's kept list: ${((withList.heapUsed - base.heapUsed) / COUNT / 1024).toFixed(2)} KB`,
        );
      console.log(
        `${PUTS} PUTs, ${CLIENTS} clients: ${putS.toFixed(1)} s = ${(PUTS / putS).toFixed(0)} per second`,
      );
    } finally {
      await host.stop();
    }
  } finally {
    await idp.close();
    await azurite?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

type Host = ProbedHost;

/** Reloads page 1 until the host answers from its own reading of every connection. */
async function untilCounted(host: Host): Promise<void> {
  for (;;) {
    const r = await call(host, '/api/status', 'GET', { accept: 'text/html' });
    if (!COUNTING.test(r.body) && !COUNTED_BEFORE.test(r.body)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function startHost(dataDir: string, connectionsFile: string, azurite?: Azurite): Promise<Host> {
  const env = azurite ? { AzureWebJobsStorage: azurite.connectionString } : {};
  return startProbedHost({ dataDir, functionKey: FUNCTION_KEY, connectionsFile, env });
}

function call(
  host: Host,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
  body?: string,
  agent?: http.Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${host.url}${path}`,
      { method, agent, headers: { 'x-functions-key': FUNCTION_KEY, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function expectStatus(
  response: Promise<{ status: number; body: string }>,
  status: number,
): Promise<void> {
  const r = await response;
  if (r.status !== status)
    throw new Error(`expected ${status}, answered ${r.status}: ${r.body.slice(0, 300)}`);
}

async function timed(
  work: () => Promise<{ status: number; body: string }>,
): Promise<{ ms: number; status: number; bytes: number; body: string }> {
  const t = performance.now();
  const r = await work();
  const ms = performance.now() - t;
  if (r.status !== 200) throw new Error(`answered ${r.status}: ${r.body.slice(0, 300)}`);
  return { ms, status: r.status, bytes: r.body.length, body: r.body };
}

async function median(work: () => Promise<{ status: number; body: string }>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await timed(work)).ms);
  return times.sort((a, b) => a - b)[2]!;
}

async function roundOf(host: Host, count: number, path: (i: number) => string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: TOKEN_CONCURRENCY });
  let next = 0;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: TOKEN_CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        const r = await call(host, path(i), 'GET', {}, undefined, agent);
        if (r.status !== 200) throw new Error(`token ${ids[i]}: ${r.status} ${r.body.slice(0, 300)}`);
        progress('tokens', ++done, started);
      }
    }),
  );
  agent.destroy();
}

/** A line on stderr every tenth of COUNT, so a long run shows where it is. */
function progress(what: string, done: number, since: number): void {
  if (COUNT >= 10_000 && done % (COUNT / 10) === 0)
    console.error(`${what} ${done}/${COUNT} (${((performance.now() - since) / 1000).toFixed(0)} s)`);
}

await main();

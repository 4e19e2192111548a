/**
 * `tsx bench/cold-start.ts` (after `npm run build`): what a Flex Consumption cold start pays for the
 * deployment package, the bundled one `npm run package` builds against the unbundled layout it replaced
 * (`scripts/package.mjs --unbundled`: compiled files and production node_modules), both built from this
 * tree into temporary folders outside the project.
 *
 * (a) Import of the package's entry in a fresh process (package folder as working directory, nothing
 *     inherited), alternating with a bare `import('@azure/functions')` in a fresh process: median and
 *     best of BENCH_IMPORT_RUNS each. Issue 18's target: bundled ≤ 1.5× bare.
 * (b) Process start to the first `/api/token` answered, per package, alternating, BENCH_TOKEN_RUNS
 *     each: a worker stand-in (test/support/functions-worker.mjs) loads the package and invokes its
 *     `token` function through @azure/functions, on the Key Vault store (the simulator over HTTPS) with
 *     the blob lease (Azurite), credentials from a managed identity endpoint as App Service serves it
 *     (`IDENTITY_ENDPOINT`), and the Entra simulator. Each run is a cold cache: a lease, a vault read, a
 *     refresh at Entra and the rotated refresh token written back, before the answer.
 * (c) Both packages' sizes.
 *
 * Every process it starts binds 127.0.0.1 and ends by itself. The vault is reached by a *.vault.azure.net
 * name (the SDK refuses a challenge from any other host), resolved to 127.0.0.1 by a preload that
 * both packages get alike.
 *
 *   BENCH_IMPORT_RUNS (15)  BENCH_TOKEN_RUNS (7)
 *   BENCH_CPU_PROF=<dir>: the first-token processes write CPU profiles there (node --cpu-prof)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startEntraSimulator } from '../test/fakes/entra.js';
import { startKeyVaultSimulator } from '../test/fakes/keyvault-simulator.js';
import { startAzurite } from '../test/support/azurite.js';
import { buildPackage, runWorker } from '../test/support/packaged-broker.js';
import { ROOT } from '../test/support/process.js';
import { seedSupportConnection } from '../test/support/simulator-grant.js';

const IMPORT_RUNS = Number(process.env.BENCH_IMPORT_RUNS ?? 15);
const TOKEN_RUNS = Number(process.env.BENCH_TOKEN_RUNS ?? 7);
const CLIENT_ID = 'c01d57a2-0000-4000-8000-00000000b0a7';
const MANAGED_IDENTITY = 'c01d57a2-0000-4000-8000-0000000000a1';
const REDIRECT = 'https://broker.example/api/callback';
const VAULT_HOST = 'broker-bench.vault.azure.net';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const best = (xs: number[]) => Math.min(...xs);
const ms = (x: number) => `${x.toFixed(0)} ms`;

function size(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = size(path);
      files += sub.files;
      bytes += sub.bytes;
    } else if (e.isFile()) {
      files += 1;
      bytes += statSync(path).size;
    }
  }
  return { files, bytes };
}

/** ms the dynamic import of `specifier` took in a fresh process started in `cwd` with nothing inherited. */
function importTime(cwd: string, specifier: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(specifier)}); process.stdout.write(String(performance.now() - t));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`import of ${specifier} failed:\n${r.stderr}`);
  return Number(r.stdout);
}

/** The App Service managed identity endpoint, handing out the token the vault simulator accepts. */
async function identityEndpoint(vaultToken: string, header: string): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const resource = url.searchParams.get('resource');
    if (req.headers['x-identity-header'] !== header || !resource) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"statusCode":400}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        access_token: vaultToken,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: 'Bearer',
        client_id: url.searchParams.get('client_id') ?? MANAGED_IDENTITY,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/src/functions/index.js'))) throw new Error('run `npm run build` first');
  const work = await mkdtemp(join(tmpdir(), 'broker-bench-cold-'));
  const bundled = join(work, 'bundled');
  const unbundled = join(work, 'unbundled');
  const stops: Array<() => Promise<unknown>> = [];
  try {
    console.log(`node ${process.version}; ${cpus().length} cores; ${cpus()[0]?.model ?? ''}`);
    console.log('building both packages…');
    buildPackage(bundled);
    buildPackage(unbundled, { unbundled: true });

    // (c) sizes
    const sb = size(bundled);
    const su = size(unbundled);
    console.log('\npackage (unpacked)       files        MB');
    console.log(
      `bundled           ${String(sb.files).padStart(12)} ${(sb.bytes / 1e6).toFixed(2).padStart(9)}`,
    );
    console.log(
      `unbundled (before)${String(su.files).padStart(12)} ${(su.bytes / 1e6).toFixed(2).padStart(9)}`,
    );
    console.log(`size ratio bundled/unbundled: ${(sb.bytes / su.bytes).toFixed(3)}`);

    // (a) import of the entry, alternating, each in a fresh process
    const times = { bundled: [] as number[], bare: [] as number[], unbundled: [] as number[] };
    const bundledEntry = pathToFileURL(join(bundled, 'dist/index.js')).href;
    const unbundledEntry = pathToFileURL(join(unbundled, 'dist/src/functions/index.js')).href;
    importTime(bundled, bundledEntry); // the first run warms the disk cache for both sides alike
    importTime(unbundled, '@azure/functions');
    for (let i = 0; i < IMPORT_RUNS; i++) {
      times.bundled.push(importTime(bundled, bundledEntry));
      // Bare @azure/functions as an app would import it, resolved from the unbundled package's node_modules.
      times.bare.push(importTime(unbundled, '@azure/functions'));
      times.unbundled.push(importTime(unbundled, unbundledEntry));
    }
    console.log(`\nimport of the entry in a fresh process (${IMPORT_RUNS} alternating runs each)`);
    console.log('                                  median      best');
    for (const [name, xs] of [
      ['bundled entry', times.bundled],
      ["bare import('@azure/functions')", times.bare],
      ['unbundled entry (before)', times.unbundled],
    ] as const) {
      console.log(`${name.padEnd(34)}${ms(median(xs)).padStart(8)}${ms(best(xs)).padStart(10)}`);
    }
    console.log(
      `ratio bundled/bare: median ${(median(times.bundled) / median(times.bare)).toFixed(2)}, best ${(best(times.bundled) / best(times.bare)).toFixed(2)} (target ≤ 1.5)`,
    );
    console.log(
      `ratio unbundled/bare: median ${(median(times.unbundled) / median(times.bare)).toFixed(2)}, best ${(best(times.unbundled) / best(times.bare)).toFixed(2)}`,
    );

    // (b) process start to the first token, on Key Vault with the blob lease
    const secret = randomBytes(24).toString('base64url');
    const entra = await startEntraSimulator({
      clients: [{ clientId: CLIENT_ID, secret, redirectUris: [REDIRECT] }],
    });
    stops.push(entra.close);
    const vault = await startKeyVaultSimulator();
    stops.push(vault.close);
    const azurite = await startAzurite();
    stops.push(azurite.close);
    const identityHeader = randomBytes(16).toString('hex');
    const identity = await identityEndpoint(vault.sim.accessToken, identityHeader);
    stops.push(() => new Promise((resolve) => identity.close(resolve)));

    const store = await vault.createStore();
    const connections = await seedSupportConnection(store, {
      authority: entra.url,
      clientId: CLIENT_ID,
      clientSecret: secret,
      redirectUri: REDIRECT,
    });

    const caFile = join(work, 'vault-ca.pem');
    await writeFile(caFile, vault.ca);
    const vaultPort = new URL(vault.url).port;
    // The vault's name resolves to the simulator; everything else resolves as usual.
    const preload = join(work, 'resolve-vault.mjs');
    await writeFile(
      preload,
      `import dns from 'node:dns';
const lookup = dns.lookup;
dns.lookup = (host, options, callback) => {
  if (host !== ${JSON.stringify(VAULT_HOST)}) return lookup(host, options, callback);
  const cb = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options?.all;
  process.nextTick(() => (all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
};
`,
    );
    const env = {
      BROKER_CONNECTIONS: connections,
      BROKER_PUBLIC_URL: 'https://broker.example',
      KEY_VAULT_URL: `https://${VAULT_HOST}:${vaultPort}`,
      AzureWebJobsStorage: azurite.connectionString,
      IDENTITY_ENDPOINT: `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`,
      IDENTITY_HEADER: identityHeader,
      AZURE_CLIENT_ID: MANAGED_IDENTITY,
      NODE_EXTRA_CA_CERTS: caFile,
    };
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF, '--cpu-prof-interval', '200']
      : [];
    const firstToken = async (dir: string) => {
      const run = await runWorker(
        dir,
        env,
        [{ function: 'token', url: 'https://broker.example/api/token?connection=support' }],
        { nodeArgs: ['--import', pathToFileURL(preload).href, ...profile] },
      );
      const answer = run.events.find((e) => e.event === 'response');
      if (run.code !== 0 || answer?.status !== 200 || run.firstResponseMs === undefined)
        throw new Error(`no token from ${dir} (exit ${run.code}, status ${answer?.status}):\n${run.stderr}`);
      return run.firstResponseMs;
    };
    const first = { bundled: [] as number[], unbundled: [] as number[] };
    await firstToken(bundled); // warms Azurite's container and the disk cache, for both alike
    for (let i = 0; i < TOKEN_RUNS; i++) {
      first.unbundled.push(await firstToken(unbundled));
      first.bundled.push(await firstToken(bundled));
    }
    console.log(
      `\nprocess start → first /api/token answered (Key Vault store + blob lease, cold cache; ${TOKEN_RUNS} alternating runs each)`,
    );
    console.log('                                  median      best');
    console.log(
      `${'bundled'.padEnd(34)}${ms(median(first.bundled)).padStart(8)}${ms(best(first.bundled)).padStart(10)}`,
    );
    console.log(
      `${'unbundled (before)'.padEnd(34)}${ms(median(first.unbundled)).padStart(8)}${ms(best(first.unbundled)).padStart(10)}`,
    );
    console.log(
      `ratio bundled/unbundled: median ${(median(first.bundled) / median(first.unbundled)).toFixed(2)}, best ${(best(first.bundled) / best(first.unbundled)).toFixed(2)}`,
    );
    const redeemedTwice = [...entra.sim.stats.refreshRedemptions.values()].filter((n) => n > 1).length;
    console.log(`refresh tokens redeemed more than once: ${redeemedTwice}`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

await main();

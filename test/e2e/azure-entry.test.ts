import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTable } from '../../src/functions/routes.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import { type EntraFake, startEntraSimulator } from '../fakes/entra.js';
import { buildPackage, runWorker } from '../support/packaged-broker.js';
import { childEnv, ROOT, runNode } from '../support/process.js';
import { seedSupportConnection } from '../support/simulator-grant.js';

const main = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).main as string;
const table = routeTable(() => Promise.reject(new Error('unused')), loadSettings({}));
const routeNames = [...table.http, ...table.timers].map((r) => r.name).sort();
// Without a build (a bare `vitest run`) there is nothing to package; on CI that is an error, not a skip.
const unbuilt = !existsSync(join(ROOT, main)) && !process.env.CI;

/**
 * The compiled entry that package.json `main` names loads under plain Node (ESM over the CommonJS
 * `@azure/functions`) and registers every route of the table. Outside a Functions host the library
 * runs in test mode and names each registration it skips, which is what this reads.
 */
it('package.json main registers the whole route table with @azure/functions', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-entry-'));
  const script = join(dataDir, 'load.mjs');
  await writeFile(script, `await import(${JSON.stringify(join(ROOT, main))});\n`);
  const r = await runNode(script, [], childEnv({ BROKER_DATA_DIR: dataDir }));
  await rm(dataDir, { recursive: true, force: true });
  expect(r.code).toBe(0);
  const registered = [...r.stderr.matchAll(/register function "([^"]+)"/g)].map((m) => m[1]).sort();
  expect(routeNames).toEqual(expect.arrayContaining(['callback', 'rotate', 'start', 'status', 'token']));
  expect(registered).toEqual(routeNames);
});

/**
 * The bundled deployment package, as Azure runs it: in a folder outside the project (nothing resolves
 * from the project's node_modules), loaded by a worker stand-in that serves `@azure/functions-core` by
 * intercepting `require`, as the Functions worker does, and invokes the registered `token` function
 * through @azure/functions' own invocation model. The connection's grant is one the Entra simulator
 * issued (over HTTP), stored in the package's file store beforehand as a consent would have left it.
 */
describe.skipIf(unbuilt)('the bundled package in a clean process', () => {
  const CLIENT_ID = '5f0c8a9e-2b7d-4c1e-9a3f-6d8e0b1c2a4f';
  const SECRET = `bundle-secret-${Math.random().toString(36).slice(2)}`;
  const REDIRECT = 'https://broker.example/api/callback';
  let work = '';
  let entra: EntraFake;
  let env: Record<string, string>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'broker-bundle-'));
    buildPackage(join(work, 'package'));
    entra = await startEntraSimulator({
      clients: [{ clientId: CLIENT_ID, secret: SECRET, redirectUris: [REDIRECT] }],
    });
    const dataDir = join(work, 'data');
    const store = await FileSecretStore.open(dataDir);
    const connections = await seedSupportConnection(store, {
      authority: entra.url,
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      redirectUri: REDIRECT,
    });
    env = {
      BROKER_CONNECTIONS: connections,
      BROKER_DATA_DIR: dataDir,
      BROKER_PUBLIC_URL: 'https://broker.example',
    };
  }, 120_000);

  afterAll(async () => {
    await entra?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('registers the route table with the worker and answers /api/token with a fresh access token', async () => {
    const run = await runWorker(join(work, 'package'), env, [
      { function: 'token', url: 'https://broker.example/api/token?connection=support' },
      { function: 'token', url: 'https://broker.example/api/token?connection=nobody' },
    ]);
    expect(run.code, `${run.stdout}${run.stderr}`).toBe(0);
    const [registered, first, unknown] = run.events;
    expect(registered?.functions?.sort()).toEqual(routeNames);
    expect(first).toMatchObject({ event: 'response', function: 'token', status: 200 });
    const body = JSON.parse(first!.body!) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBeGreaterThan(0);
    // The token is one the simulator issued to this refresh, not something the package made up.
    expect(entra.sim.issuedSecrets()).toContain(body.access_token);
    expect(entra.sim.stats.byGrant.refresh_token).toBe(1);
    expect(unknown).toMatchObject({ status: 404 });
    expect(JSON.parse(unknown!.body!)).toMatchObject({ code: 'unknown_connection' });
    // The log lines the package wrote hold no token.
    expect(run.stdout).toContain('token.vended');
    expect(`${run.stdout}${run.stderr}`).not.toContain(body.access_token);
  });
});

import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { routeTable } from '../../src/functions/routes.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { childEnv, ROOT, runNode } from '../support/process.js';

/**
 * The compiled entry that package.json `main` names loads under plain Node (ESM over the CommonJS
 * `@azure/functions`) and registers every route of the table. Outside a Functions host the library
 * runs in test mode and names each registration it skips, which is what this reads.
 */
it('package.json main registers the whole route table with @azure/functions', async () => {
  const main = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).main as string;
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-entry-'));
  const script = join(dataDir, 'load.mjs');
  await writeFile(script, `await import(${JSON.stringify(join(ROOT, main))});\n`);
  const r = await runNode(script, [], childEnv({ BROKER_DATA_DIR: dataDir }));
  await rm(dataDir, { recursive: true, force: true });
  expect(r.code).toBe(0);
  const registered = [...r.stderr.matchAll(/register function "([^"]+)"/g)].map((m) => m[1]).sort();
  const table = routeTable(() => Promise.reject(new Error('unused')), loadSettings({}));
  const expected = [...table.http, ...table.timers].map((r) => r.name).sort();
  expect(expected).toEqual(expect.arrayContaining(['callback', 'rotate', 'start', 'status', 'token']));
  expect(registered).toEqual(expected);
});

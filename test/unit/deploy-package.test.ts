// Builds the Azure deployment package with scripts/package.mjs (into a temporary folder) and checks
// what azd would upload: the compiled entry `main` names, production dependencies only, and an
// entry that loads from the package alone. Needs the compiled output: `npm test` builds first.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Manifest {
  name: string;
  type?: string;
  main: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const root = resolve(import.meta.dirname, '../..');
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const manifest = readJson<Manifest>(join(root, 'package.json'));
// Without a build (a bare `vitest run`) there is nothing to package; on CI that is an error, not a skip.
const skip = !existsSync(join(root, manifest.main)) && !process.env.CI;
const hasZip = !spawnSync('zip', ['-v'], { stdio: 'ignore' }).error;

function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? files(path, base) : [path.slice(base.length + 1).replaceAll('\\', '/')];
  });
}

describe.skipIf(skip)('deployment package (scripts/package.mjs)', () => {
  let work = '';
  let out = '';

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'broker-package-'));
    out = join(work, 'deploy');
    const run = spawnSync(process.execPath, [join(root, 'scripts/package.mjs'), '--out', out], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds host.json, the manifest, the lock and the compiled entry package.json names', () => {
    for (const file of ['host.json', 'package.json', 'package-lock.json', manifest.main]) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    expect(readdirSync(out).sort()).toEqual([
      'dist',
      'host.json',
      'node_modules',
      'package-lock.json',
      'package.json',
    ]);
    expect(readdirSync(join(out, 'dist'))).toEqual(['src']);
  });

  it('ships the compiled output without TypeScript, source maps, tests or local files', () => {
    const shipped = files(join(out, 'dist'));
    expect(shipped.length).toBeGreaterThan(5);
    expect(shipped.filter((f) => /\.(ts|map)$/.test(f))).toEqual([]);
    expect(shipped).toContain(manifest.main.replace(/^dist\//, ''));
    for (const local of ['src', 'test', 'connections.json', 'local.settings.json', '.broker']) {
      expect(existsSync(join(out, local)), local).toBe(false);
    }
  });

  it('deploys a manifest with the runtime fields and dependencies only', () => {
    const deployed = readJson<Manifest>(join(out, 'package.json'));
    expect(deployed).toMatchObject({ name: manifest.name, type: manifest.type, main: manifest.main });
    expect(deployed.dependencies).toEqual(manifest.dependencies);
    expect(deployed.scripts).toBeUndefined();
    expect(deployed.devDependencies).toBeUndefined();
    expect(deployed.optionalDependencies).toBeUndefined();
  });

  it('installs every production dependency at its locked version and no dev or optional one', () => {
    const lock = readJson<{ packages: Record<string, { version?: string }> }>(
      join(root, 'package-lock.json'),
    );
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const installed = readJson<{ version: string }>(join(out, 'node_modules', name, 'package.json'));
      expect(installed.version, name).toBe(lock.packages[`node_modules/${name}`]?.version);
    }
    const excluded = [
      ...Object.keys(manifest.devDependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
    ];
    expect(excluded.length).toBeGreaterThan(0);
    expect(excluded.filter((name) => existsSync(join(out, 'node_modules', name)))).toEqual([]);
    expect(existsSync(join(out, 'node_modules', '.bin', 'tsc'))).toBe(false);
  });

  it('loads its entry from the package alone', () => {
    const load = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `await import(${JSON.stringify(join(out, manifest.main))}); console.log('LOADED');`,
      ],
      // A clean environment and the package as working directory: nothing resolves from the project.
      { cwd: out, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
    );
    expect(load.status, load.stderr).toBe(0);
    expect(load.stdout).toContain('LOADED');
  });

  it.skipIf(!hasZip)('zips the folder for manual deployment', () => {
    expect(statSync(`${out}.zip`).size).toBeGreaterThan(1000);
  });
});

// Builds the Azure deployment package with scripts/package.mjs (into a temporary folder) and checks
// what azd would upload: the bundled entry package.json `main` names, its chunks, no node_modules, a
// size within budget, and an entry that loads none of the SDKs only some settings need. Needs the
// compiled output: `npm test` builds first. (test/e2e/azure-entry.test.ts serves a token through it.)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Manifest {
  name: string;
  type?: string;
  main: string;
  engines?: Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The parts of esbuild's metafile read here. */
interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<
    string,
    {
      entryPoint?: string;
      bytes: number;
      inputs: Record<string, unknown>;
      imports: { path: string; kind: string; external?: boolean }[];
    }
  >;
}

const root = resolve(import.meta.dirname, '../..');
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const manifest = readJson<Manifest>(join(root, 'package.json'));
// Without a build (a bare `vitest run`) there is nothing to package; on CI that is an error, not a skip.
const skip = !existsSync(join(root, manifest.main)) && !process.env.CI;
const hasZip = !spawnSync('zip', ['-v'], { stdio: 'ignore' }).error;
/** Issue 18's budget for the unpacked package. */
const MAX_BYTES = 8 * 1024 * 1024;
/**
 * What only some settings need: Key Vault, the blob lease, managed identity and DefaultAzureCredential;
 * jose for `CALLER_AUTH=entra` and certificate credentials.
 */
const LAZY_SDKS = [
  'node_modules/@azure/identity/',
  'node_modules/@azure/keyvault-secrets/',
  'node_modules/@azure/storage-blob/',
  'node_modules/jose/',
  // Telemetry's SDK and exporters: only with an exporter configured.
  'node_modules/@opentelemetry/',
  'node_modules/@azure/monitor-opentelemetry-exporter/',
];

function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? files(path, base) : [path.slice(base.length + 1).replaceAll('\\', '/')];
  });
}

describe.skipIf(skip)('deployment package (scripts/package.mjs)', () => {
  let work = '';
  let out = '';
  let meta: Metafile;
  /** Output names in the metafile are relative to the project. */
  const output = (file: string) => relative(root, join(out, file)).replaceAll('\\', '/');

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'broker-package-'));
    out = join(work, 'deploy');
    const run = spawnSync(process.execPath, [join(root, 'scripts/package.mjs'), '--out', out], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/bundled, \d+ files, [\d.]+ MB unpacked/);
    meta = readJson<Metafile>(`${out}.meta.json`);
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds host.json, the manifest, the licenses of what it bundles and the bundle; no node_modules', () => {
    expect(readdirSync(out).sort()).toEqual(['THIRD-PARTY-NOTICES.txt', 'dist', 'host.json', 'package.json']);
    const notices = readFileSync(join(out, 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    for (const name of ['@azure/functions', 'zod', '@azure/identity', '@azure/keyvault-secrets'])
      expect(notices).toContain(`${name}@`);
    expect(notices).toContain('MIT License');
  });

  it('ships JavaScript only: no TypeScript, source maps, tests or local files', () => {
    const shipped = files(join(out, 'dist'));
    expect(shipped).toContain('index.js');
    expect(shipped.length).toBeGreaterThan(3);
    expect(shipped.filter((f) => !f.endsWith('.js'))).toEqual([]);
    for (const local of [
      'src',
      'test',
      'node_modules',
      'connections.json',
      'local.settings.json',
      '.broker',
    ]) {
      expect(existsSync(join(out, local)), local).toBe(false);
    }
  });

  it('deploys a manifest naming the bundle, with the runtime fields and nothing to install', () => {
    const deployed = readJson<Manifest>(join(out, 'package.json'));
    expect(deployed).toMatchObject({ name: manifest.name, type: 'module', main: 'dist/index.js' });
    expect(deployed.engines).toEqual(manifest.engines);
    expect(existsSync(join(out, deployed.main))).toBe(true);
    expect(deployed.dependencies).toBeUndefined();
    expect(deployed.scripts).toBeUndefined();
    expect(deployed.devDependencies).toBeUndefined();
    expect(deployed.optionalDependencies).toBeUndefined();
  });

  it(`stays within ${MAX_BYTES / 1024 / 1024} MB unpacked`, () => {
    const total = files(out).reduce((sum, f) => sum + statSync(join(out, f)).size, 0);
    expect(total).toBeGreaterThan(100_000);
    expect(total).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('loads the SDKs only some settings need from chunks the entry does not import', () => {
    const entry = output('dist/index.js');
    expect(meta.outputs[entry]?.entryPoint).toBe(manifest.main);
    /** The entry's chunk and every chunk it imports, following the import kinds given. */
    const closure = (kinds: string[]) => {
      const seen = new Set<string>();
      const pending = [entry];
      for (let chunk = pending.pop(); chunk !== undefined; chunk = pending.pop()) {
        if (seen.has(chunk)) continue;
        seen.add(chunk);
        for (const i of meta.outputs[chunk]?.imports ?? [])
          if (kinds.includes(i.kind) && !i.external) pending.push(i.path);
      }
      return [...seen].flatMap((c) => Object.keys(meta.outputs[c]?.inputs ?? {}));
    };
    // What loads before the entry runs, and what it can load later through `import()`.
    const loadedAtStart = closure(['import-statement']);
    const loadable = closure(['import-statement', 'dynamic-import']);
    for (const sdk of LAZY_SDKS) {
      expect(
        loadable.some((input) => input.startsWith(sdk)),
        `${sdk} is loadable`,
      ).toBe(true);
      expect(loadedAtStart.filter((input) => input.startsWith(sdk))).toEqual([]);
    }
    expect(loadable).toContain('dist/src/lib/store/keyvault-store.js');
    expect(loadedAtStart).not.toContain('dist/src/lib/store/keyvault-store.js');
    expect(loadable).toContain('dist/src/lib/store/file-store.js');
    // Not one line of telemetry before an exporter is configured, and then only on demand.
    expect(loadedAtStart.filter((input) => input.startsWith('dist/src/lib/telemetry/'))).toEqual([]);
    expect(loadable).toContain('dist/src/lib/telemetry/otlp.js');
    // What registering the functions needs is there from the start.
    expect(loadedAtStart).toContain('dist/src/functions/routes.js');
    expect(loadedAtStart.some((input) => input.startsWith('node_modules/@azure/functions/'))).toBe(true);
  });

  it('leaves @azure/functions-core to the worker: required at run time, not bundled', () => {
    const entry = meta.outputs[output('dist/index.js')]!;
    expect(entry.imports).toContainEqual(
      expect.objectContaining({ path: '@azure/functions-core', kind: 'require-call', external: true }),
    );
    expect(Object.keys(meta.inputs).filter((i) => i.includes('functions-core'))).toEqual([]);
  });

  it('loads its entry from the package alone', () => {
    const load = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `await import(${JSON.stringify(join(out, 'dist/index.js'))}); console.log('LOADED');`,
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

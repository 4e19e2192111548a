#!/usr/bin/env node
// Builds the Azure Functions deployment package from the compiled output (run `npm run build` first).
//
// Bundled (the default): the entry package.json `main` names, bundled by esbuild into ESM for Node 22
// with code splitting, so what a cold start loads is one file plus the chunks the settings need:
//
//   .deploy/  host.json, package.json (`main`: dist/index.js; no dependencies: nothing to install),
//             dist/index.js and dist/chunks/*.js, THIRD-PARTY-NOTICES.txt (the bundled packages' licenses)
//   .deploy.meta.json  esbuild's metafile (what each file holds and imports), beside the folder, not in it
//   .deploy.zip  the folder zipped, when a `zip` command is available (for az functionapp deploy)
//
// The SDKs only some settings need (@azure/identity, @azure/keyvault-secrets, @azure/storage-blob,
// jose) are reached through `import()` only, so they stay in chunks the entry does not load; the check
// below fails the build when the entry would load one of them at start. `@azure/functions-core` stays external: the
// Functions worker provides it at run time by intercepting `require` (without it @azure/functions runs
// in "test mode").
//
// Unbundled (`--unbundled`, the layout before issue 18, kept for the cold-start comparison in
// bench/cold-start.ts): dist/src/** (no source maps) and the production dependencies installed from the
// lock file (npm ci --omit=dev --omit=optional).
//
// azure.yaml deploys the folder (`dist: .deploy`, no remote build).
//
//   node scripts/package.mjs [--out <dir>] [--no-zip] [--unbundled]
//
// The unbundled layout needs plain Node and npm only; the bundled one needs esbuild (a devDependency).
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the bundled package's entry lives, relative to the package folder. */
export const BUNDLED_MAIN = 'dist/index.js';
/** The ceiling issue 18 sets for the unpacked bundled package; the deploy-package test asserts it too. */
export const BUNDLED_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Loaded only when a setting asks for them (Key Vault, the blob lease, managed identity credentials;
 * jose for Entra caller tokens and certificate assertions): the entry must reach none of these
 * through static imports.
 */
export const LAZY_INPUTS = [
  'node_modules/@azure/identity/',
  'node_modules/@azure/msal-node/',
  'node_modules/@azure/keyvault-secrets/',
  'node_modules/@azure/storage-blob/',
  'node_modules/@azure/core-rest-pipeline/',
  'node_modules/jose/',
  'dist/src/lib/store/keyvault-store.js',
  // Telemetry: loaded only when an exporter is configured (docs/telemetry.md).
  'node_modules/@opentelemetry/',
  'node_modules/@azure/monitor-opentelemetry-exporter/',
];

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { out: '.deploy', zip: true, bundle: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') {
      args.out = argv[++i];
      if (!args.out) fail('--out needs a directory');
    } else if (a.startsWith('--out=')) {
      args.out = a.slice('--out='.length);
    } else if (a === '--no-zip') {
      args.zip = false;
    } else if (a === '--unbundled') {
      args.bundle = false;
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/package.mjs [--out <dir>] [--no-zip] [--unbundled]');
      process.exit(0);
    } else {
      fail(`unknown argument ${a}`);
    }
  }
  return args;
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** True when `inner` is `outer` or lies inside it. */
function isWithin(inner, outer) {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function run(command, args, cwd) {
  // npm is a .cmd shim on Windows, which needs a shell (Node >= 20.12 refuses to spawn it otherwise).
  const shim = command === 'npm' && process.platform === 'win32';
  const result = spawnSync(shim ? 'npm.cmd' : command, args, { cwd, stdio: 'inherit', shell: shim });
  if (result.error) fail(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}`);
}

function hasCommand(command) {
  const result = spawnSync(command, ['-v'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

export function countFiles(dir) {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = countFiles(path);
      files += sub.files;
      bytes += sub.bytes;
    } else if (entry.isFile()) {
      files += 1;
      bytes += statSync(path).size;
    }
  }
  return { files, bytes };
}

/** Problems with an unbundled package folder; empty when it is deployable. */
function verifyUnbundled(out, manifest, lock) {
  const problems = [];
  if (!manifest.main) problems.push('package.json has no "main"');
  else if (!existsSync(join(out, manifest.main))) problems.push(`"main" ${manifest.main} is missing`);
  if (!existsSync(join(out, 'host.json'))) problems.push('host.json is missing');
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    const installed = join(out, 'node_modules', name, 'package.json');
    if (!existsSync(installed)) {
      problems.push(`dependency ${name} is missing`);
      continue;
    }
    const locked = lock.packages?.[`node_modules/${name}`]?.version;
    const version = readJson(installed).version;
    if (locked && version !== locked)
      problems.push(`dependency ${name} is ${version}, the lock says ${locked}`);
  }
  for (const kind of ['devDependencies', 'optionalDependencies']) {
    for (const name of Object.keys(manifest[kind] ?? {})) {
      if (existsSync(join(out, 'node_modules', name)))
        problems.push(`${kind} entry ${name} is in node_modules`);
    }
  }
  return problems;
}

/**
 * The inputs (source files) a chunk loads before its code runs: its own and, transitively, those of
 * every chunk it imports statically. Dynamic `import()`s are not followed: they load on use.
 */
export function staticInputs(metafile, chunk) {
  const seen = new Set();
  const inputs = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    const output = metafile.outputs[name];
    if (!output) return;
    for (const input of Object.keys(output.inputs)) inputs.add(input);
    for (const i of output.imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(chunk);
  return inputs;
}

/** The output that holds `entryPoint` (a path relative to the project, as esbuild names inputs). */
export function entryChunk(metafile, entryPoint) {
  const found = Object.entries(metafile.outputs).find(([, o]) => o.entryPoint === entryPoint);
  return found?.[0];
}

/** Problems with a bundled package folder and its metafile; empty when it is deployable. */
function verifyBundled(out, deployed, metafile, entryPoint) {
  const problems = [];
  if (!existsSync(join(out, deployed.main))) problems.push(`"main" ${deployed.main} is missing`);
  if (!existsSync(join(out, 'host.json'))) problems.push('host.json is missing');
  if (existsSync(join(out, 'node_modules'))) problems.push('node_modules is in the package');
  const entry = entryChunk(metafile, entryPoint);
  if (!entry) return [...problems, `the metafile has no output for ${entryPoint}`];
  const eager = [...staticInputs(metafile, entry)];
  const all = Object.values(metafile.outputs).flatMap((o) => Object.keys(o.inputs));
  for (const lazy of LAZY_INPUTS) {
    const loaded = eager.filter((input) => input.startsWith(lazy));
    if (loaded.length > 0) problems.push(`the entry loads ${lazy} at start (${loaded[0]})`);
    if (!all.some((input) => input.startsWith(lazy))) problems.push(`${lazy} is not in the bundle`);
  }
  return problems;
}

/** `node_modules/a/node_modules/@b/c/x.js` → `node_modules/a/node_modules/@b/c`. */
function packageDirOf(input) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const rest = input.slice(at + 'node_modules/'.length).split('/');
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  return `${input.slice(0, at)}node_modules/${name}`;
}

/** Bundling copies third-party code into our files, so their licenses must travel with it. */
function thirdPartyNotices(metafile) {
  const dirs = new Set();
  for (const output of Object.values(metafile.outputs)) {
    for (const input of Object.keys(output.inputs)) {
      const dir = packageDirOf(input);
      if (dir) dirs.add(dir);
    }
  }
  const sections = [];
  for (const dir of [...dirs].sort()) {
    const pkg = readJson(join(root, dir, 'package.json'));
    const licenseFile = readdirSync(join(root, dir)).find((f) => /^(license|licence|copying)/i.test(f));
    const text = licenseFile
      ? readFileSync(join(root, dir, licenseFile), 'utf8').trim()
      : `License: ${pkg.license ?? 'see the package'}`;
    sections.push(`${pkg.name}@${pkg.version} (${pkg.license ?? 'no license field'})\n\n${text}`);
  }
  return `Third-party software bundled into dist/ by scripts/package.mjs.\n\n${sections.join(`\n\n${'-'.repeat(78)}\n\n`)}\n`;
}

async function bundle(out, manifest) {
  const { build } = await import('esbuild');
  const entryPoint = manifest.main;
  const result = await build({
    absWorkingDir: root,
    entryPoints: { index: entryPoint },
    outdir: join(out, dirname(BUNDLED_MAIN)),
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    // Whitespace and syntax only: identifiers stay, so a stack trace in the logs still names the
    // function and class it passed through (no source maps are shipped).
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    external: ['@azure/functions-core'],
    // CommonJS dependencies call `require` (Node built-ins, and @azure/functions asks for
    // @azure/functions-core, which the worker serves by intercepting `Module.prototype.require`).
    banner: {
      js: "import { createRequire as __brokerCreateRequire } from 'node:module'; const require = __brokerCreateRequire(import.meta.url);",
    },
    metafile: true,
    logLevel: 'warning',
  });
  writeFileSync(join(out, 'THIRD-PARTY-NOTICES.txt'), thirdPartyNotices(result.metafile));
  return { metafile: result.metafile, entryPoint };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const out = resolve(root, args.out);
  if (isWithin(root, out)) fail(`refusing to use ${out}: it contains the project`);
  for (const kept of ['src', 'dist', 'node_modules', 'test', 'infra', 'scripts', '.git']) {
    if (isWithin(out, join(root, kept))) fail(`refusing to use ${out}: it is inside ${kept}${sep}`);
  }

  const manifest = readJson(join(root, 'package.json'));
  if (!manifest.main) fail('package.json has no "main"');
  if (!existsSync(join(root, manifest.main)))
    fail(`${manifest.main} does not exist: run \`npm run build\` first`);
  for (const file of ['host.json', 'package-lock.json']) {
    if (!existsSync(join(root, file))) fail(`${file} is missing`);
  }

  const metaPath = `${out}.meta.json`;
  rmSync(out, { recursive: true, force: true });
  rmSync(metaPath, { force: true });
  mkdirSync(out, { recursive: true });
  cpSync(join(root, 'host.json'), join(out, 'host.json'));

  // The deployed manifest names what runs and nothing else: no scripts, dev or optional dependencies,
  // so a build on the server (should one ever run) has nothing to compile and nothing extra to install.
  const deployed = {
    name: manifest.name,
    version: manifest.version,
    private: true,
    type: manifest.type,
    main: args.bundle ? BUNDLED_MAIN : manifest.main,
    engines: manifest.engines,
  };

  if (args.bundle) {
    writeFileSync(join(out, 'package.json'), `${JSON.stringify(deployed, null, 2)}\n`);
    const { metafile, entryPoint } = await bundle(out, manifest);
    writeFileSync(metaPath, JSON.stringify(metafile));
    const problems = verifyBundled(out, deployed, metafile, entryPoint);
    if (problems.length > 0) fail(`the package in ${out} is not deployable:\n  ${problems.join('\n  ')}`);
  } else {
    cpSync(join(root, 'package-lock.json'), join(out, 'package-lock.json'));
    cpSync(join(root, 'dist', 'src'), join(out, 'dist', 'src'), {
      recursive: true,
      filter: (src) => !src.endsWith('.map'),
    });
    deployed.dependencies = manifest.dependencies ?? {};
    writeFileSync(join(out, 'package.json'), `${JSON.stringify(deployed, null, 2)}\n`);
    // Exactly the locked production dependencies (npm ci resolves the production tree only, the lock's
    // other entries are ignored); no install scripts (nothing here needs one).
    run(
      'npm',
      [
        'ci',
        '--prefix',
        out,
        '--omit=dev',
        '--omit=optional',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
      ],
      out,
    );
    const problems = verifyUnbundled(out, manifest, readJson(join(root, 'package-lock.json')));
    if (problems.length > 0) fail(`the package in ${out} is not deployable:\n  ${problems.join('\n  ')}`);
  }

  const { files, bytes } = countFiles(out);
  console.log(
    `package: ${relative(process.cwd(), out) || out}: ${args.bundle ? 'bundled' : 'unbundled'}, ${files} files, ${(bytes / 1e6).toFixed(2)} MB unpacked`,
  );
  if (args.bundle && bytes > BUNDLED_MAX_BYTES)
    fail(`the bundled package is ${bytes} bytes, over the ${BUNDLED_MAX_BYTES}-byte budget`);

  if (args.zip) {
    const zipPath = `${out}.zip`;
    if (hasCommand('zip')) {
      rmSync(zipPath, { force: true });
      run('zip', ['-q', '-r', '-X', zipPath, '.'], out);
      console.log(
        `package: ${relative(process.cwd(), zipPath) || zipPath}: ${(statSync(zipPath).size / 1e6).toFixed(2)} MB`,
      );
    } else {
      console.log('package: no `zip` command: folder only (azd deploys the folder)');
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

#!/usr/bin/env node
// Builds the Azure Functions deployment package from the compiled output (run `npm run build` first):
//
//   .deploy/  host.json, package.json, package-lock.json, dist/src/** (no source maps) and the
//             production dependencies, installed from the lock file (npm ci --omit=dev --omit=optional)
//   .deploy.zip  the same folder zipped, when a `zip` command is available (for az functionapp deploy)
//
// Then checks the package: the file package.json `main` names is there, every dependency is installed,
// and no dev or optional dependency is. azure.yaml deploys the folder (`dist: .deploy`, no remote build).
//
//   node scripts/package.mjs [--out <dir>] [--no-zip]
//
// Plain Node (no dependencies), so it runs before anything else is installed in the package.
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

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { out: '.deploy', zip: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') {
      args.out = argv[++i];
      if (!args.out) fail('--out needs a directory');
    } else if (a.startsWith('--out=')) {
      args.out = a.slice('--out='.length);
    } else if (a === '--no-zip') {
      args.zip = false;
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/package.mjs [--out <dir>] [--no-zip]');
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

function countFiles(dir) {
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

/** Problems with a built package folder; empty when it is deployable. */
function verifyPackage(out, manifest, lock) {
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

function main() {
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

  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const file of ['host.json', 'package-lock.json']) {
    cpSync(join(root, file), join(out, file));
  }
  cpSync(join(root, 'dist', 'src'), join(out, 'dist', 'src'), {
    recursive: true,
    filter: (src) => !src.endsWith('.map'),
  });

  // The deployed manifest names what runs and nothing else: no scripts, dev or optional dependencies,
  // so a build on the server (should one ever run) has nothing to compile and nothing extra to install,
  // and npm ci below resolves the production tree only (the lock's other entries are ignored).
  const deployed = {
    name: manifest.name,
    version: manifest.version,
    private: true,
    type: manifest.type,
    main: manifest.main,
    engines: manifest.engines,
    dependencies: manifest.dependencies ?? {},
  };
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(deployed, null, 2)}\n`);

  // Exactly the locked production dependencies; no install scripts (nothing here needs one).
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

  const problems = verifyPackage(out, manifest, readJson(join(root, 'package-lock.json')));
  if (problems.length > 0) fail(`the package in ${out} is not deployable:\n  ${problems.join('\n  ')}`);

  const { files, bytes } = countFiles(out);
  console.log(
    `package: ${relative(process.cwd(), out) || out}: ${files} files, ${(bytes / 1e6).toFixed(1)} MB`,
  );

  if (args.zip) {
    const zipPath = `${out}.zip`;
    if (hasCommand('zip')) {
      rmSync(zipPath, { force: true });
      run('zip', ['-q', '-r', '-X', zipPath, '.'], out);
      console.log(
        `package: ${relative(process.cwd(), zipPath) || zipPath}: ${(statSync(zipPath).size / 1e6).toFixed(1)} MB`,
      );
    } else {
      console.log('package: no `zip` command: folder only (azd deploys the folder)');
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();

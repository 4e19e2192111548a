#!/usr/bin/env node
// Fails when package-lock.json is not the lock `npm install` would write for package.json, so a
// dependency change cannot break `npm ci` on a fresh clone without anyone noticing.
//
//   node scripts/check-lock.mjs          check (CI runs this before `npm ci`)
//   node scripts/check-lock.mjs --fix    write the regenerated lock over package-lock.json
//
// Both steps run on copies of package.json and package-lock.json in a temporary folder with no
// node_modules, so the installed tree neither sways the verdict nor gets touched (the lock must hold
// every platform's optional packages, not only those installed here):
//   1. `npm ci --dry-run`: does npm ci accept the lock at all ("Missing: … from lock file")?
//   2. `npm install --package-lock-only`: is the lock what npm install writes for it? Compared entry
//      by entry (not as text, and without the `resolved` URLs), this catches what npm ci forgives:
//      entries npm install would add, drop or change.
// Nothing is installed and no install script runs; step 2 reads package metadata from the registry
// (the npm cache answers most of it).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fix = process.argv.includes('--fix');
const npmFlags = ['--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'];

function npm(args, cwd) {
  // npm is a .cmd shim on Windows, which needs a shell (Node >= 20.12 refuses to spawn it otherwise).
  const shim = process.platform === 'win32';
  const result = spawnSync(shim ? 'npm.cmd' : 'npm', args, { cwd, encoding: 'utf8', shell: shim });
  if (result.error) throw result.error;
  return result;
}

/**
 * What npm ci installs from a lock: its version and each package entry, with keys sorted and without
 * `resolved` (the registry URL, which npm's omit-lockfile-registry-resolved setting leaves out), so
 * formatting and that setting do not count as a difference.
 */
function essence(text) {
  const lock = JSON.parse(text);
  const packages = {};
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    const { resolved: _resolved, ...rest } = entry;
    packages[key] = canonical(rest);
  }
  return { lockfileVersion: lock.lockfileVersion, packages };
}

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical(value[key])]),
    );
  return value;
}

/** One line per entry that differs: `+` only in the regenerated lock, `-` only in the committed one. */
function describe(before, after) {
  const lines = [];
  if (before.lockfileVersion !== after.lockfileVersion)
    lines.push(`  lockfileVersion ${before.lockfileVersion} -> ${after.lockfileVersion}`);
  for (const key of new Set([...Object.keys(before.packages), ...Object.keys(after.packages)])) {
    const a = before.packages[key];
    const b = after.packages[key];
    const name = key || '(root)';
    if (!a) lines.push(`  + ${name}@${b.version ?? ''}`);
    else if (!b) lines.push(`  - ${name}@${a.version ?? ''}`);
    else if (JSON.stringify(a) !== JSON.stringify(b)) {
      const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
        (field) => JSON.stringify(a[field]) !== JSON.stringify(b[field]),
      );
      lines.push(`  ~ ${name}: ${fields.join(', ')} differ`);
    }
  }
  return lines;
}

const lockPath = join(root, 'package-lock.json');
if (!existsSync(lockPath)) {
  console.error('check-lock: package-lock.json is missing; run `npm install` and commit it.');
  process.exit(1);
}
/** Runs both checks in a temporary folder; returns the exit code. */
function check() {
  const dir = mkdtempSync(join(tmpdir(), 'check-lock-'));
  try {
    for (const file of ['package.json', 'package-lock.json', '.npmrc']) {
      if (existsSync(join(root, file))) copyFileSync(join(root, file), join(dir, file));
    }
    const committed = readFileSync(lockPath, 'utf8');
    const problems = [];

    const ci = npm(['ci', '--dry-run', ...npmFlags], dir);
    if (ci.status !== 0) {
      const said = `${ci.stderr}`
        .split('\n')
        .filter((line) => /Missing:|Invalid:|in sync|EUSAGE|ERR/.test(line))
        .slice(0, 40);
      problems.push('`npm ci` refuses this lock:', ...said.map((line) => `  ${line}`));
    }

    const install = npm(['install', '--package-lock-only', ...npmFlags], dir);
    if (install.status !== 0) {
      console.error(`check-lock: npm install --package-lock-only failed:\n${install.stderr}`);
      return 1;
    }
    const regenerated = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    if (fix) {
      // Also mends a lock with merge-conflict markers: npm install resolves those itself.
      if (regenerated === committed)
        console.log('check-lock: package-lock.json was already what npm writes.');
      else {
        copyFileSync(join(dir, 'package-lock.json'), lockPath);
        console.log(
          'check-lock: package-lock.json regenerated; review `git diff package-lock.json`, commit it.',
        );
      }
      return 0;
    }
    let before;
    try {
      before = essence(committed);
    } catch (error) {
      console.error(
        `check-lock: package-lock.json is not valid JSON (${error.message}); run \`npm run lock:fix\`.`,
      );
      return 1;
    }
    const after = essence(regenerated);
    const differences = describe(before, after);
    if (differences.length > 0) {
      problems.push('`npm install` would rewrite package-lock.json:', ...differences.slice(0, 60));
    }

    if (problems.length > 0) {
      console.error(
        `check-lock: package-lock.json is out of sync with package.json.\n${problems.join('\n')}`,
      );
      console.error('Fix: `npm run lock:fix` (regenerates the lock from package.json), then commit it.');
      return 1;
    }
    const entries = Object.keys(before.packages).length - 1;
    console.log(
      `check-lock: package-lock.json is in sync with package.json (${entries} packages; npm ci accepts it).`,
    );
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exit(check());

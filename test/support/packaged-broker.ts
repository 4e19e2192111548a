/**
 * A deployment package (scripts/package.mjs) run the way Azure runs it: copied to a folder outside
 * the project, loaded by the worker stand-in (functions-worker.mjs) in its own process, which invokes
 * its registered functions. Used by the deploy-package test and bench/cold-start.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ROOT } from './process.js';

const WORKER = join(ROOT, 'test/support/functions-worker.mjs');

/** Builds a package into `out` (`npm run build` must have run); throws with the script's output on failure. */
export function buildPackage(out: string, options: { unbundled?: boolean } = {}): string {
  const args = [join(ROOT, 'scripts/package.mjs'), '--out', out, '--no-zip'];
  if (options.unbundled) args.push('--unbundled');
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/package.mjs failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export interface Invocation {
  function: string;
  url: string;
  headers?: Record<string, string>;
}

export interface WorkerEvent {
  event: 'registered' | 'response';
  functions?: string[];
  function?: string;
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** ms since the worker process started. */
  at?: number;
}

export interface WorkerRun {
  code: number | null;
  events: WorkerEvent[];
  /** What the package wrote (its log lines). */
  stdout: string;
  stderr: string;
  /** ms from spawning the process to its first response line (undefined when there was none). */
  firstResponseMs?: number;
}

/**
 * Runs the worker stand-in on `packageDir` with exactly `env` (nothing inherited but PATH) and the
 * package folder as working directory, as the Functions host starts the worker.
 */
export function runWorker(
  packageDir: string,
  env: Record<string, string>,
  invocations: Invocation[],
  options: { nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<WorkerRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), WORKER, packageDir, JSON.stringify(invocations)],
      {
        cwd: packageDir,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      },
    );
    let events = '';
    let stdout = '';
    let stderr = '';
    let firstResponseMs: number | undefined;
    (child.stdio[3] as Readable).on('data', (d: Buffer) => {
      events += d.toString();
      if (firstResponseMs === undefined && events.includes('"event":"response"'))
        firstResponseMs = performance.now() - started;
    });
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        events: events
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as WorkerEvent),
        stdout,
        stderr,
        firstResponseMs,
      });
    });
  });
}

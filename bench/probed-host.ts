/**
 * `npm start` in a child process for the memory benches: the compiled entry, its settings from the
 * environment, no rotation pass, and a probe preloaded that answers memory figures over IPC.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist/src/local/main.js');

/**
 * Loaded into the host with `--import`: answers a request for memory with the figures after two full
 * collections (the second sweeps what finalizers of the first released), a heap snapshot first when asked.
 */
const PROBE = `import { writeHeapSnapshot } from 'node:v8';
process.on('message', (m) => {
  if (m?.type !== 'memory') return;
  globalThis.gc(); globalThis.gc();
  if (m.snapshot) writeHeapSnapshot(m.snapshot);
  process.send({ memory: process.memoryUsage() });
});`;

/** Compiles the host (`dist/`) the benches start, unless BENCH_SKIP_BUILD is set. */
export function buildHost(): void {
  if (process.env.BENCH_SKIP_BUILD) return;
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

export interface ProbedHost {
  url: string;
  /** Memory after two full collections; with `snapshot` (a file), the heap written there first. */
  memory(snapshot?: string): Promise<NodeJS.MemoryUsage>;
  /** The host's "Connections:" start-up line. */
  listed(): string;
  stop(): Promise<void>;
}

export async function startProbedHost(options: {
  dataDir: string;
  functionKey: string;
  connectionsFile?: string;
  env?: NodeJS.ProcessEnv;
}): Promise<ProbedHost> {
  const env: NodeJS.ProcessEnv = {
    ...options.env,
    PATH: process.env.PATH,
    PORT: '0',
    BROKER_DATA_DIR: options.dataDir,
    BROKER_FUNCTION_KEY: options.functionKey,
    // No rotation pass in the middle of a reading.
    ROTATION_SCHEDULE: '0 0 0 1 1 *',
  };
  if (options.connectionsFile) env.BROKER_CONNECTIONS_FILE = options.connectionsFile;
  const child: ChildProcess = fork(MAIN, [], {
    cwd: options.dataDir.startsWith(tmpdir()) ? tmpdir() : ROOT,
    env,
    execArgv: ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(PROBE)}`],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let listed = '';
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    // Every line is read (the log lines too), or the child would block on a full pipe.
    lines.on('line', (line) => {
      const m = /^Token broker listening on (\S+)/.exec(line);
      if (m) resolve(m[1]!);
      if (line.startsWith('Connections:')) listed = line;
    });
    exited.then((code) => reject(new Error(`the host exited with ${code} before listening`)));
  });
  return {
    url,
    listed: () => listed,
    memory: (snapshot) =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { memory: NodeJS.MemoryUsage }).memory));
        child.send({ type: 'memory', snapshot });
      }),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

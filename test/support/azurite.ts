/**
 * Azurite's blob service in a child process on 127.0.0.1, in memory, for the refresh lock's tests.
 * `stop()` then `start()` again serves the same port with empty storage, as a storage outage that
 * lost nothing the broker relies on (the lock container and blobs are created again when missing).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { ROOT } from './process.js';

const AZURITE_BLOB = `${ROOT}node_modules/azurite/dist/src/blob/main.js`;
/** Azurite's well-known development account (public, documented by Microsoft). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  port: number;
  connectionString: string;
  running(): boolean;
  start(): Promise<void>;
  /** SIGKILL: connections drop at once, as in an outage. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startAzurite(): Promise<Azurite> {
  const port = await freePort();
  const workspace = await mkdtemp(join(tmpdir(), 'azurite-'));
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();

  const start = async () => {
    const proc = spawn(
      process.execPath,
      [
        AZURITE_BLOB,
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--skipApiVersionCheck',
        '--loose',
        '--silent',
        '--disableTelemetry',
      ],
      { cwd: workspace, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    exited = new Promise((resolve) => proc.once('close', resolve));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Azurite did not start:\n${output}`)), 20_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes('successfully listens')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited (${code}):\n${output}`));
      });
    });
  };

  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    port,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    start,
    stop,
    async close() {
      await stop();
      await rm(workspace, { recursive: true, force: true });
    },
  };
}

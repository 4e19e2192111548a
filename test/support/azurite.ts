/**
 * Azurite's blob service (and, asked for, its table service) in child processes on 127.0.0.1, in
 * memory, for the refresh lock's, the definition store's and the invitation store's tests.
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
const AZURITE_TABLE = `${ROOT}node_modules/azurite/dist/src/table/main.js`;
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

export interface AzuriteOptions {
  /** Also serve the table service (its endpoint joins the connection string). */
  tables?: boolean;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const blob = await startService(AZURITE_BLOB, 'blob');
  const table = options.tables ? await startService(AZURITE_TABLE, 'table') : undefined;
  const endpoints =
    `BlobEndpoint=http://127.0.0.1:${blob.port}/${ACCOUNT};` +
    (table ? `TableEndpoint=http://127.0.0.1:${table.port}/${ACCOUNT};` : '');
  return {
    port: blob.port,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};${endpoints}`,
    running: () => blob.running(),
    async start() {
      await blob.start();
      await table?.start();
    },
    async stop() {
      await blob.stop();
      await table?.stop();
    },
    async close() {
      await blob.close();
      await table?.close();
    },
  };
}

/** Azurite's table service alone (the invitation store's tests): its connection string and close. */
export async function startAzuriteTables(): Promise<AzuriteTables> {
  const table = await startService(AZURITE_TABLE, 'table');
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};TableEndpoint=http://127.0.0.1:${table.port}/${ACCOUNT};`,
    close: () => table.close(),
  };
}

export interface AzuriteTables {
  connectionString: string;
  close(): Promise<void>;
}

async function startService(main: string, service: 'blob' | 'table') {
  const port = await freePort();
  const workspace = await mkdtemp(join(tmpdir(), 'azurite-'));
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();

  const start = async () => {
    const proc = spawn(
      process.execPath,
      [
        main,
        `--${service}Host`,
        '127.0.0.1',
        `--${service}Port`,
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
        if (/successfully (listens|started)/.test(output)) {
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
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    start,
    stop,
    async close() {
      await stop();
      await rm(workspace, { recursive: true, force: true });
    },
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobLeaseClient, BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Connection } from '../../src/lib/config/connections.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { BrokerError } from '../../src/lib/errors.js';
import {
  BlobLeaseLock,
  type BlobLeaseLockOptions,
  LOCK_CONTAINER,
} from '../../src/lib/lock/blob-lease-lock.js';
import { InProcessLock, type RefreshLock } from '../../src/lib/lock/lock.js';
import { openLock } from '../../src/lib/lock/open-lock.js';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import { GrantService } from '../../src/lib/tokens/grant-service.js';
import { GrantStore } from '../../src/lib/tokens/grant-store.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { lineLogger, silentLogger } from '../support/logs.js';

const FAST = {
  retryOptions: { maxTries: 2, tryTimeoutInMs: 2000, retryDelayInMs: 50, maxRetryDelayInMs: 200 },
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lock as one instance would have it: its own storage client, its own log. */
function instance(azurite: Azurite, options: Partial<BlobLeaseLockOptions> = {}) {
  const { logger, events } = lineLogger();
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString, FAST).getContainerClient(
    LOCK_CONTAINER,
  );
  const lock = new BlobLeaseLock({ container, logger, pollMinMs: 5, pollMaxMs: 50, ...options });
  return { lock, container, events };
}

describe('BlobLeaseLock against Azurite', () => {
  let azurite: Azurite;
  let admin: ContainerClient;
  let keyNo = 0;
  const freshKey = () => `conn-${++keyNo}`;

  beforeAll(async () => {
    azurite = await startAzurite();
    admin = BlobServiceClient.fromConnectionString(azurite.connectionString, FAST).getContainerClient(
      LOCK_CONTAINER,
    );
  });
  afterAll(async () => {
    await azurite?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const leaseState = async (key: string) => (await admin.getBlobClient(key).getProperties()).leaseState;

  it('creates the container and the blob when missing, runs the work under a lease, then releases it', async () => {
    const { lock, events } = instance(azurite);
    expect(await admin.exists()).toBe(false);
    const key = freshKey();
    const during = await lock.withLock(key, () => leaseState(key));
    expect(during).toBe('leased');
    expect(await leaseState(key)).toBe('available');
    expect(events('lock.container_created')).toHaveLength(1);
    expect(events('lock.released')).toEqual([
      expect.objectContaining({ level: 'info', connection: key, polls: 0, waitMs: expect.any(Number) }),
    ]);
    // The blob is empty: a lock, not data.
    expect((await admin.getBlobClient(key).getProperties()).contentLength).toBe(0);
  });

  it('lets one holder at a time in, across instances and within one, and never loses a turn', async () => {
    const a = instance(azurite);
    const b = instance(azurite);
    const c = instance(azurite);
    const key = freshKey();
    let inside = 0;
    let most = 0;
    let done = 0;
    const work = async () => {
      inside++;
      most = Math.max(most, inside);
      await sleep(3);
      inside--;
      done++;
    };
    const calls = [a, b, c].flatMap(({ lock }) => Array.from({ length: 8 }, () => lock.withLock(key, work)));
    await Promise.all(calls);
    expect(done).toBe(24);
    expect(most).toBe(1);
    const waits = [a, b, c].flatMap((x) => x.events('lock.released')).filter((l) => (l.polls as number) > 0);
    expect(waits.length).toBeGreaterThan(0);
  });

  it('sends one lease request at a time per key from one instance, however many callers wait', async () => {
    const { lock } = instance(azurite);
    const key = freshKey();
    let inFlight = 0;
    let most = 0;
    const original = BlobLeaseClient.prototype.acquireLease;
    vi.spyOn(BlobLeaseClient.prototype, 'acquireLease').mockImplementation(async function (
      this: BlobLeaseClient,
      ...args
    ) {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        return await original.apply(this, args);
      } finally {
        inFlight--;
      }
    });
    await Promise.all(Array.from({ length: 10 }, () => lock.withLock(key, () => sleep(2))));
    expect(most).toBe(1);
  });

  it('gives up on a lease held too long with upstream_unavailable, after polling with backoff', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite, { maxWaitMs: 600 });
    await lock.withLock(key, async () => {}); // container and blob exist
    const other = admin.getBlobClient(key).getBlobLeaseClient();
    await other.acquireLease(15);
    const ran = vi.fn();
    const started = performance.now();
    const err = await lock.withLock(key, async () => ran()).catch((e: unknown) => e);
    const waited = performance.now() - started;
    await other.releaseLease();
    expect(ran).not.toHaveBeenCalled();
    expect(err).toBeInstanceOf(BrokerError);
    expect((err as BrokerError).code).toBe('upstream_unavailable');
    expect((err as BrokerError).retryAfter).toBeGreaterThanOrEqual(1);
    expect(waited).toBeGreaterThanOrEqual(590);
    expect(waited).toBeLessThan(2000);
    const [exceeded] = events('lock.wait_exceeded');
    // Backoff: far fewer polls than a 5 ms busy loop would make in 600 ms.
    expect(exceeded?.polls as number).toBeGreaterThan(3);
    expect(exceeded?.polls as number).toBeLessThan(40);
  });

  it('waits for a holder and runs as soon as it releases', async () => {
    const key = freshKey();
    const a = instance(azurite);
    const b = instance(azurite);
    const order: string[] = [];
    let releaseA!: () => void;
    const aHolding = new Promise<void>((resolve) => {
      void a.lock.withLock(key, async () => {
        order.push('a');
        resolve();
        await new Promise<void>((r) => {
          releaseA = r;
        });
        order.push('a done');
      });
    });
    await aHolding;
    const bDone = b.lock.withLock(key, async () => {
      order.push('b');
    });
    await sleep(150);
    expect(order).toEqual(['a']);
    releaseA();
    await bDone;
    expect(order).toEqual(['a', 'a done', 'b']);
    expect(b.events('lock.released')[0]?.polls).toBeGreaterThan(0);
  });

  it('renews the lease while a refresh runs', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite, { renewEveryMs: 100 });
    const renew = vi.spyOn(BlobLeaseClient.prototype, 'renewLease');
    await lock.withLock(key, () => sleep(550));
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(3);
    expect(events('lock.lease_lost')).toEqual([]);
    expect(events('lock.renew_failed')).toEqual([]);
    expect(await leaseState(key)).toBe('available');
  });

  it('logs a lease lost mid-refresh (another took it), and does not release what it no longer holds', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite, { renewEveryMs: 100 });
    const thief = admin.getBlobClient(key).getBlobLeaseClient();
    await lock.withLock(key, async () => {
      await admin.getBlobClient(key).getBlobLeaseClient().breakLease(0);
      await thief.acquireLease(15);
      await sleep(300);
    });
    expect(events('lock.lease_lost')).toEqual([
      expect.objectContaining({
        level: 'error',
        connection: key,
        reason: '409 LeaseIdMismatchWithLeaseOperation',
      }),
    ]);
    expect(events('lock.released')[0]).toMatchObject({ lost: true });
    // The thief's lease is intact.
    expect(await leaseState(key)).toBe('leased');
    await thief.releaseLease();
  });

  it('refuses to run unlocked when storage is down, and resumes (container recreated) when it is back', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite);
    await lock.withLock(key, async () => {});
    const created = events('lock.container_created').length;
    await azurite.stop();
    try {
      const ran = vi.fn();
      const started = performance.now();
      const err = await lock.withLock(key, async () => ran()).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(ran).not.toHaveBeenCalled();
      expect(err).toBeInstanceOf(BrokerError);
      expect((err as BrokerError).code).toBe('upstream_unavailable');
      expect((err as BrokerError).message).toContain('did not answer (ECONNREFUSED)');
      expect((err as BrokerError).retryAfter).toBe(5);
    } finally {
      await azurite.start();
    }
    // Azurite kept nothing (in memory): the container and blob are created again.
    expect(await lock.withLock(key, async () => 'ran')).toBe('ran');
    expect(events('lock.container_created')).toHaveLength(created + 1);
  });

  it('runs under the in-process mutex alone when storage is down and unlocked refresh is allowed', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite, { unlockedWhenUnreachable: true });
    await azurite.stop();
    try {
      let inside = 0;
      let most = 0;
      const work = async () => {
        inside++;
        most = Math.max(most, inside);
        await sleep(5);
        inside--;
        return 'ran';
      };
      const results = await Promise.all([lock.withLock(key, work), lock.withLock(key, work)]);
      expect(results).toEqual(['ran', 'ran']);
      expect(most).toBe(1);
      expect(events('lock.unlocked')).toEqual([
        expect.objectContaining({ level: 'warn', connection: key, reason: 'ECONNREFUSED' }),
        expect.objectContaining({ level: 'warn', connection: key, reason: 'ECONNREFUSED' }),
      ]);
    } finally {
      await azurite.start();
    }
  });

  it('a lease that is never released (its holder died) blocks the others for at most one lease period', async () => {
    const key = freshKey();
    const { lock, events } = instance(azurite, { pollMaxMs: 250 });
    await lock.withLock(key, async () => {});
    // A holder that dies right after acquiring: the lease is never renewed nor released.
    await admin.getBlobClient(key).getBlobLeaseClient().acquireLease(15);
    const started = performance.now();
    await lock.withLock(key, async () => {});
    const blocked = performance.now() - started;
    expect(blocked).toBeGreaterThan(13_000);
    expect(blocked).toBeLessThan(15_000 + 1_000);
    expect(events('lock.released').at(-1)?.polls).toBeGreaterThan(10);
  }, 25_000);
});

describe('GrantService under a cross-instance lock', () => {
  // GrantService.redeem reads only the id; the dialect is a stub.
  const connection = { id: 'mailbox' } as Connection;

  /** Reads the store itself once it holds a cross-instance lock: another instance may have rotated the token. */
  it.each([
    ['a cross-instance', 'the store', true, 'rt-from-other-instance'],
    ['an in-process', 'its read cache', false, 'rt-1'],
  ])('under %s lock, redeems the token from %s', async (_lock, _source, crossInstance, expected) => {
    const dir = await mkdtemp(join(tmpdir(), 'lock-grant-'));
    const store = await FileSecretStore.open(dir);
    const grants = new GrantStore(store, { readCacheMs: 60_000 });
    const inner = new InProcessLock();
    const lock: RefreshLock = { crossInstance, withLock: (k, fn) => inner.withLock(k, fn) };
    const redeemed: string[] = [];
    let n = 1;
    const service = new GrantService({
      grants,
      lock,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      dialect: () =>
        ({
          refresh: async ({ refreshToken }: { refreshToken: string }) => {
            redeemed.push(refreshToken);
            return { accessToken: 'at', tokenType: 'Bearer', expiresIn: 3600, refreshToken: `rt-${++n}` };
          },
        }) as never,
    });
    const conn = connection;
    await grants.save(conn.id, 'rt-1', { status: 'connected' });
    // Another instance rotates the token behind this process's read cache.
    const other = await FileSecretStore.open(dir);
    await other.setSecret('rt-mailbox', 'rt-from-other-instance', { tags: { status: 'connected' } });
    await service.redeem(conn);
    expect(redeemed).toEqual([expected]);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('choosing the refresh lock', () => {
  const logger = silentLogger();
  const base = { BROKER_DATA_DIR: '/tmp/x' };
  const DEV =
    'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;';
  const containerUrl = (lock: RefreshLock) =>
    (lock as unknown as { container: ContainerClient }).container.url.replace(/\/$/, '');

  it('is in-process without host storage (the embedded host), and with REFRESH_LOCK=process', async () => {
    expect(await openLock(loadSettings(base), logger)).toBeInstanceOf(InProcessLock);
    const off = loadSettings({ ...base, AzureWebJobsStorage: DEV, REFRESH_LOCK: 'process' });
    expect(await openLock(off, logger)).toBeInstanceOf(InProcessLock);
  });

  it('is a blob lease in broker-locks of the host storage, from a connection string', async () => {
    const lock = await openLock(loadSettings({ ...base, AzureWebJobsStorage: DEV }), logger);
    expect(lock).toBeInstanceOf(BlobLeaseLock);
    expect(lock.crossInstance).toBe(true);
    expect(containerUrl(lock)).toBe('http://127.0.0.1:1/devstoreaccount1/broker-locks');
    const dev = await openLock(
      loadSettings({ ...base, AzureWebJobsStorage: 'UseDevelopmentStorage=true' }),
      logger,
    );
    expect(containerUrl(dev)).toBe('http://127.0.0.1:10000/devstoreaccount1/broker-locks');
  });

  it('is a blob lease from the identity-based settings the deployment uses', async () => {
    const settings = loadSettings({
      ...base,
      AzureWebJobsStorage__accountName: 'stbroker123',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
    });
    expect(settings.hostStorage).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stbroker123.blob.core.windows.net',
      tableServiceUri: 'https://stbroker123.table.core.windows.net',
      credential: 'managedidentity',
      clientId: '00000000-0000-0000-0000-000000000001',
    });
    const lock = await openLock(settings, logger);
    expect(containerUrl(lock)).toBe('https://stbroker123.blob.core.windows.net/broker-locks');
    const byUri = loadSettings({
      ...base,
      AzureWebJobsStorage__blobServiceUri: 'https://custom.example.net/',
      AzureWebJobsStorage__accountName: 'ignored',
    });
    expect(containerUrl(await openLock(byUri, logger))).toBe('https://custom.example.net/broker-locks');
  });

  it('defaults to lease and refuses an unknown mode or a bad account name', () => {
    expect(loadSettings(base).refreshLock).toBe('lease');
    expect(loadSettings({ ...base, REFRESH_LOCK: 'lease-or-unlocked' }).refreshLock).toBe(
      'lease-or-unlocked',
    );
    expect(() => loadSettings({ ...base, REFRESH_LOCK: 'off' })).toThrow(/REFRESH_LOCK/);
    expect(() => loadSettings({ ...base, AzureWebJobsStorage__accountName: 'Bad_Name' })).toThrow(
      /AzureWebJobsStorage__accountName/,
    );
  });
});

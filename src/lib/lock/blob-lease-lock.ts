import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlobLeaseClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { type Clock, monotonicClock } from '../clock.js';
import { BrokerError, LockStorageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { InProcessLock, type RefreshLock } from './lock.js';

/** The container of the lock blobs in the host storage (docs/design.md, "Stored data"). */
export const LOCK_CONTAINER = 'broker-locks';
/** Azure allows 15 to 60 s; the shortest is how long a crashed holder can block the others. */
export const DEFAULT_LEASE_SECONDS = 15;
/** The role the broker's identity needs on the host storage account (granted by the deployment). */
export const LOCK_STORAGE_ROLE = 'Storage Blob Data Owner';

export interface BlobLeaseLockOptions {
  /** The `broker-locks` container; created with its blobs when missing. */
  container: ContainerClient;
  logger: Logger;
  /** Lease length, 15-60 s (default 15). */
  leaseSeconds?: number;
  /** How often the holder renews its lease, ms (default a third of the lease). */
  renewEveryMs?: number;
  /** How long a caller waits for a lease another instance holds, ms (default the lease + 5 s). */
  maxWaitMs?: number;
  /** First pause between attempts on a held lease, ms; it doubles (with jitter) up to `pollMaxMs`. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** Time allowed to one storage operation, SDK retries included, ms (default 5000). */
  operationTimeoutMs?: number;
  /**
   * Storage unreachable: run the refresh under the in-process mutex alone (`REFRESH_LOCK=lease-or-unlocked`)
   * instead of refusing it. Only for providers that tolerate a refresh token redeemed twice.
   */
  unlockedWhenUnreachable?: boolean;
  random?: () => number;
  /** Times waits, holds and renewals; default monotonic (leases expire in real time). */
  clock?: Clock;
}

interface Held {
  lease: BlobLeaseClient;
  acquiredAt: number;
  renewedAt: number;
  waitMs: number;
  polls: number;
  lost: boolean;
}

/** What a storage failure may safely say: the HTTP status and the service's error code, never the message. */
function describe(err: unknown): { status?: number; code?: string; reason: string } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    statusCode?: number;
    code?: string;
    name?: string;
    details?: { errorCode?: string };
  };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = e.details?.errorCode ?? e.code ?? (e.name === 'AbortError' ? 'timeout' : undefined);
  const reason = [status, code].filter((x) => x !== undefined).join(' ') || 'no answer';
  return { status, code, reason };
}

/** Storage could not be asked: the error says why and which role is missing, never the service's message. */
function lockStorageError(connectionId: string, err: unknown): LockStorageError {
  const { status, reason } = describe(err);
  const hint =
    status === 401 || status === 403
      ? ` The broker's identity needs the ${LOCK_STORAGE_ROLE} role on the host storage account.`
      : '';
  return new LockStorageError(
    connectionId,
    `The refresh lock's storage (AzureWebJobsStorage, container ${LOCK_CONTAINER}) did not answer (${reason}), so the refresh was not run: a refresh token is never redeemed without the lock.${hint} Try again shortly.`,
    reason,
  );
}

/**
 * The cross-instance refresh lock (docs/design.md, "Token vending and rotation"): a lease on the blob `{connectionId}`
 * in the container `broker-locks` of the Functions host storage. The holder renews the lease while its
 * refresh runs and releases it at the end; an instance that dies simply stops renewing, so the lease
 * expires and blocks the others at most one lease period.
 *
 * An in-process mutex sits in front, so one instance asks storage for one lease per key at a time
 * however many of its callers refresh. A lease another instance holds is polled for with exponential
 * backoff and jitter, for at most `maxWaitMs`; then, like any storage failure, the caller gets
 * `upstream_unavailable` (unless `unlockedWhenUnreachable`, for storage failures only).
 */
export class BlobLeaseLock implements RefreshLock {
  readonly crossInstance = true;
  private readonly local = new InProcessLock();
  private readonly container: ContainerClient;
  private readonly logger: Logger;
  private readonly leaseSeconds: number;
  private readonly leaseMs: number;
  private readonly renewEveryMs: number;
  private readonly maxWaitMs: number;
  private readonly pollMinMs: number;
  private readonly pollMaxMs: number;
  private readonly operationTimeoutMs: number;
  private readonly unlockedWhenUnreachable: boolean;
  private readonly random: () => number;
  private readonly clock: Clock;

  constructor(options: BlobLeaseLockOptions) {
    this.container = options.container;
    this.logger = options.logger;
    this.leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    if (!Number.isInteger(this.leaseSeconds) || this.leaseSeconds < 15 || this.leaseSeconds > 60)
      throw new Error('leaseSeconds must be a whole number from 15 to 60');
    this.leaseMs = this.leaseSeconds * 1000;
    this.renewEveryMs = options.renewEveryMs ?? Math.floor(this.leaseMs / 3);
    if (!(this.renewEveryMs > 0 && this.renewEveryMs < this.leaseMs))
      throw new Error('renewEveryMs must be shorter than the lease');
    this.maxWaitMs = options.maxWaitMs ?? this.leaseMs + 5000;
    this.pollMinMs = options.pollMinMs ?? 10;
    this.pollMaxMs = options.pollMaxMs ?? 100;
    this.operationTimeoutMs = options.operationTimeoutMs ?? 5000;
    this.unlockedWhenUnreachable = options.unlockedWhenUnreachable ?? false;
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? monotonicClock;
  }

  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.withLock(key, () => this.underLease(key, fn));
  }

  private async underLease<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let held: Held;
    try {
      held = await this.acquire(key);
    } catch (err) {
      if (err instanceof LockStorageError && this.unlockedWhenUnreachable) {
        this.logger.warn('lock.unlocked', { connection: key, reason: err.reason });
        return fn();
      }
      throw err;
    }
    this.logger.debug('lock.acquired', { connection: key, waitMs: round(held.waitMs), polls: held.polls });
    const renewal = this.keepRenewed(key, held);
    try {
      return await fn();
    } finally {
      renewal.stop();
      if (!held.lost && this.clock.now() - held.renewedAt >= this.leaseMs) this.lost(key, held, 'expired');
      if (!held.lost) await this.release(key, held);
      this.logger.info('lock.released', {
        connection: key,
        waitMs: round(held.waitMs),
        heldMs: round(this.clock.now() - held.acquiredAt),
        polls: held.polls,
        ...(held.lost ? { lost: true } : {}),
      });
    }
  }

  private async acquire(key: string): Promise<Held> {
    const started = this.clock.now();
    const blob = this.container.getBlockBlobClient(key);
    const lease = blob.getBlobLeaseClient(randomUUID());
    let polls = 0;
    let creations = 0;
    let delay = this.pollMinMs;
    for (;;) {
      // The lease runs from when storage took the request: counted from when it was sent, to be safe.
      const sentAt = this.clock.now();
      try {
        await lease.acquireLease(this.leaseSeconds, { abortSignal: this.deadline() });
        const waitMs = this.clock.now() - started;
        return { lease, acquiredAt: sentAt, renewedAt: sentAt, waitMs, polls, lost: false };
      } catch (err) {
        const { status, code } = describe(err);
        if (status === 409 && code === 'LeaseAlreadyPresent') {
          const left = started + this.maxWaitMs - this.clock.now();
          if (left <= 0) {
            this.logger.warn('lock.wait_exceeded', {
              connection: key,
              waitMs: round(this.clock.now() - started),
              polls,
            });
            throw new BrokerError(
              'upstream_unavailable',
              `Another instance has held the refresh lock of connection "${key}" for over ${Math.round(this.maxWaitMs / 1000)} s. Try again shortly.`,
              { connectionId: key, retryAfter: Math.max(1, Math.ceil(this.leaseSeconds / 3)) },
            );
          }
          polls++;
          await sleep(Math.min(left, delay * (0.5 + this.random() * 0.5)));
          delay = Math.min(delay * 2, this.pollMaxMs);
          continue;
        }
        // A missing container, then a missing blob: each created once, then the lease is tried again.
        if (status === 404 && creations < 2) {
          creations++;
          await this.create(key, blob, code);
          continue;
        }
        throw lockStorageError(key, err);
      }
    }
  }

  private async create(key: string, blob: BlockBlobClient, code: string | undefined): Promise<void> {
    try {
      if (code === 'ContainerNotFound') {
        await this.container.createIfNotExists({ abortSignal: this.deadline() });
        this.logger.info('lock.container_created', { container: LOCK_CONTAINER });
      }
      await blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: this.deadline() });
    } catch (err) {
      const { status } = describe(err);
      // Another instance created it first (409 BlobAlreadyExists, or 412 when it is already leased).
      if (status === 409 || status === 412) return;
      throw lockStorageError(key, err);
    }
  }

  /**
   * Renews every `renewEveryMs` while the refresh runs. A renewal the service refuses (another lease,
   * no blob) or no renewal for a whole lease period means the lease is lost: logged, since another
   * instance may now redeem the same refresh token; the running refresh cannot be called back.
   */
  private keepRenewed(key: string, held: Held): { stop(): void } {
    let stopped = false;
    let renewing = false;
    const timer = setInterval(() => {
      if (stopped || renewing || held.lost) return;
      renewing = true;
      const sentAt = this.clock.now();
      held.lease
        .renewLease({ abortSignal: this.deadline() })
        .then(
          () => {
            if (!stopped) held.renewedAt = sentAt;
          },
          (err: unknown) => {
            if (stopped || held.lost) return;
            const { status, reason } = describe(err);
            const refused =
              status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
            if (refused) this.lost(key, held, reason);
            else if (this.clock.now() - held.renewedAt >= this.leaseMs)
              this.lost(key, held, `expired (${reason})`);
            else this.logger.warn('lock.renew_failed', { connection: key, reason });
          },
        )
        .finally(() => {
          renewing = false;
        });
    }, this.renewEveryMs);
    timer.unref();
    return {
      stop() {
        stopped = true;
        clearInterval(timer);
      },
    };
  }

  private lost(key: string, held: Held, reason: string): void {
    held.lost = true;
    this.logger.error('lock.lease_lost', {
      connection: key,
      heldMs: round(this.clock.now() - held.acquiredAt),
      reason,
    });
  }

  /** A lease not released (storage gone) simply expires after `leaseSeconds`. */
  private async release(key: string, held: Held): Promise<void> {
    try {
      await held.lease.releaseLease({ abortSignal: this.deadline() });
    } catch (err) {
      this.logger.warn('lock.release_failed', { connection: key, reason: describe(err).reason });
    }
  }

  private deadline(): AbortSignal {
    return AbortSignal.timeout(this.operationTimeoutMs);
  }
}

const round = (ms: number) => Math.round(ms);

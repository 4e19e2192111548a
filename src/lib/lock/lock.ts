/**
 * Serializes every use of one connection's refresh token (docs/design.md, "Token vending and rotation"): refreshes
 * for any scope, refresh-ahead, the rotation pass, `import` and a new consent all run inside
 * `withLock(connectionId, …)`. Across Function instances this is a blob lease (`BlobLeaseLock`);
 * in one process, a mutex per key.
 */
export interface RefreshLock {
  /**
   * True when other processes take the same lock: whatever this process cached about the grant may be
   * stale once the lock is held, so the holder reads the refresh token from the store itself.
   */
  readonly crossInstance: boolean;
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** A mutex per key, for one process. */
export class InProcessLock implements RefreshLock {
  readonly crossInstance = false;
  private readonly tails = new Map<string, Promise<unknown>>();

  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    // The tail never rejects, so one failed holder does not fail everyone queued behind it.
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

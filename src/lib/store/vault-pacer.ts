/**
 * Keeps this process's Key Vault transactions inside the vault's service limits, which count
 * transactions per vault in any 10 seconds and answer 429 beyond them (docs/status-and-rotation.md, "Key Vault service
 * limits"). A rotation pass over thousands of connections would otherwise meet 429s, retry, and
 * end with connections marked transient; paced, its requests wait their turn instead.
 *
 * Each limit is a sliding window: a request may go once fewer than `limit` requests went in the
 * 10 seconds before it. Times are reserved in order of arrival (first come, first served), so a
 * caller's wait is known when it asks and no one is overtaken. Memory is one timestamp per
 * transaction in a window, bounded by the limits, whatever the number of secrets.
 */
export interface VaultPacing {
  /** Transactions of any kind per 10 s (Key Vault: 4,000 for secrets per vault and region). */
  transactionsPer10s: number;
  /** Writes (a new secret version) per 10 s, within the above (Key Vault: 300). */
  writesPer10s: number;
}

export interface VaultPacerOptions extends VaultPacing {
  /** Epoch ms; injected in tests, which move it instead of waiting. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const PACING_WINDOW_MS = 10_000;

/** The last `limit` reserved times, oldest first, in a ring. */
class SlidingWindow {
  private readonly times: number[];
  private head = 0;

  constructor(readonly limit: number) {
    this.times = new Array<number>(limit).fill(Number.NEGATIVE_INFINITY);
  }

  /** The earliest time at or after `at` when one more transaction stays inside the limit. */
  earliest(at: number): number {
    return Math.max(at, this.times[this.head]! + PACING_WINDOW_MS);
  }

  reserve(at: number): void {
    this.times[this.head] = at;
    this.head = (this.head + 1) % this.limit;
  }
}

export class VaultPacer {
  /** Transactions that had to wait, and for how long in all (ms): `bench:rotation` prints them. */
  readonly stats = { transactions: 0, waited: 0, waitedMs: 0 };
  private readonly all: SlidingWindow;
  private readonly writes: SlidingWindow;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** The latest time reserved so far: reservations never go back, so arrival order is kept. */
  private last = Number.NEGATIVE_INFINITY;

  constructor(options: VaultPacerOptions) {
    for (const [name, value] of [
      ['transactionsPer10s', options.transactionsPer10s],
      ['writesPer10s', options.writesPer10s],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
    }
    this.all = new SlidingWindow(options.transactionsPer10s);
    this.writes = new SlidingWindow(Math.min(options.writesPer10s, options.transactionsPer10s));
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Resolves when one more transaction (a write, or not) may be sent. */
  async take(write: boolean): Promise<void> {
    const now = this.now();
    let at = this.all.earliest(Math.max(now, this.last));
    if (write) {
      // A write must fit both windows; moving it later for one never breaks the other.
      at = this.writes.earliest(at);
      this.writes.reserve(at);
    }
    this.all.reserve(at);
    this.last = at;
    this.stats.transactions++;
    if (at <= now) return;
    this.stats.waited++;
    this.stats.waitedMs += at - now;
    await this.sleep(at - now);
  }
}

/** A list this old is refreshed in the background while it is still served (default). */
const REFRESH_AFTER_MS = 5_000;
/** Never served older than this: the contract's bound for a change to show everywhere. */
const MAX_AGE_MS = 30_000;

export interface KeptListOptions {
  /** Lists up to this long are not kept but computed at every request (default: every list is kept). */
  keepAbove?: number;
  /** From this age on, a request still gets the kept list and starts one refresh in the background. */
  refreshAfterMs?: number;
  /** Wall time for the age (not the broker's clock, which tests hold still). */
  now?: () => number;
}

/**
 * A list that is expensive to compute (every connection's health at 100,000 connections, every
 * invitation of every connection), kept and served for up to 30 s, refreshed in the background from
 * `refreshAfterMs` on (one computation at a time), sorted by id so each page's sort is a pass over
 * sorted input. `clear()` is for a write this instance made: the next request computes afresh, and
 * a computation begun before the write is not kept, so the writer never sees the list it replaced.
 */
export class KeptList<T extends { id: string }> {
  private kept?: { at: number; list: T[] };
  private computing?: Promise<T[]>;
  /** Bumped by `clear()`: a computation begun before it is returned to its callers, not kept. */
  private generation = 0;
  private readonly keepAbove: number;
  private readonly refreshAfterMs: number;
  private readonly now: () => number;

  constructor(
    private readonly compute: () => Promise<T[]>,
    options: KeptListOptions = {},
  ) {
    this.keepAbove = options.keepAbove ?? -1;
    this.refreshAfterMs = options.refreshAfterMs ?? REFRESH_AFTER_MS;
    this.now = options.now ?? (() => performance.now());
  }

  async get(): Promise<T[]> {
    const kept = this.kept;
    const age = kept ? this.now() - kept.at : Number.POSITIVE_INFINITY;
    if (kept && age < MAX_AGE_MS) {
      if (age >= this.refreshAfterMs) void this.refresh().catch(() => {});
      return kept.list;
    }
    return this.refresh();
  }

  /** The kept list (sorted by id) while it may still be served, without refreshing it. */
  holds(): readonly T[] | undefined {
    const kept = this.kept;
    return kept && this.now() - kept.at < MAX_AGE_MS ? kept.list : undefined;
  }

  /** Forget the kept list (a write this instance made that the next request must show). */
  clear(): void {
    this.generation++;
    this.kept = undefined;
    this.computing = undefined;
  }

  private refresh(): Promise<T[]> {
    if (this.computing) return this.computing;
    const generation = this.generation;
    const computing = (async () => {
      const at = this.now();
      const list = await this.compute();
      if (generation !== this.generation) return list;
      if (list.length > this.keepAbove) {
        list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        this.kept = { at, list };
      } else {
        this.kept = undefined;
      }
      return list;
    })().finally(() => {
      if (this.computing === computing) this.computing = undefined;
    });
    this.computing = computing;
    return computing;
  }
}

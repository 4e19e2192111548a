/** A list this old is refreshed in the background while it is still served. */
const REFRESH_AFTER_MS = 5_000;
/** Never served older than this: the contract's bound for a change to show everywhere. */
const MAX_AGE_MS = 30_000;

/**
 * Every connection's health for the status page of a large deployment. Computing it lists the
 * secret store (tags of every `rt-` secret) and the catalog: at 100,000 connections seconds, not
 * something to do per page view. Once a computed list is longer than one page, it is kept and
 * served for up to 30 s, refreshed in the background from 5 s on (one refresh at a time), sorted by
 * id so each page's sort is a pass over sorted input. Up to one page of connections it is computed
 * fresh at every request, as before: a person who just reconnected sees it at once.
 */
export class HealthCache<T extends { id: string }> {
  private kept?: { at: number; list: T[] };
  private computing?: Promise<T[]>;

  constructor(
    private readonly compute: () => Promise<T[]>,
    /** Lists up to this long are not kept (one page of the status page). */
    private readonly keepAbove: number,
    /** Wall time for the age (not the broker's clock, which tests hold still). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  async get(): Promise<T[]> {
    const kept = this.kept;
    const age = kept ? this.now() - kept.at : Number.POSITIVE_INFINITY;
    if (kept && age < MAX_AGE_MS) {
      if (age >= REFRESH_AFTER_MS) void this.refresh().catch(() => {});
      return kept.list;
    }
    return this.refresh();
  }

  /** The kept list (sorted by id) while it may still be served, without refreshing it. */
  holds(): readonly T[] | undefined {
    const kept = this.kept;
    return kept && this.now() - kept.at < MAX_AGE_MS ? kept.list : undefined;
  }

  /** Forget the kept list (a write this instance made that the page must show). */
  clear(): void {
    this.kept = undefined;
  }

  private refresh(): Promise<T[]> {
    this.computing ??= (async () => {
      const at = this.now();
      const list = await this.compute();
      if (list.length > this.keepAbove) {
        list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        this.kept = { at, list };
      } else {
        this.kept = undefined;
      }
      return list;
    })().finally(() => {
      this.computing = undefined;
    });
    return this.computing;
  }
}

import type { ConnectionHealth } from './connection-health.js';
import { STATUS_PAGE_SIZE } from './status-page-size.js';

export { STATUS_PAGE_SIZE };

export interface StatusPageQuery {
  /** Search words: a connection matches when its id, account or provider contains every one. */
  q?: string;
  /** 1-based. */
  page: number;
  size?: number;
}

export interface StatusPage {
  /** This page's rows: those needing a person first, then the healthy ones (by id once paged). */
  items: ConnectionHealth[];
  /** Every connection, before the search. */
  total: number;
  /** Connections the search matched. */
  matched: number;
  /** Of the matched, how many need a person (`remedy` set). */
  attention: number;
  page: number;
  pages: number;
  /**
   * Set when the counts come from the stored digest, not this instance's own reading of every
   * connection: when they were counted (the rows themselves are read afresh).
   */
  countedAt?: string;
  /**
   * Set on page 1 of a deployment past one page that no instance has read whole yet (no digest
   * stored): this instance is reading every connection for the first time. `items` are then the
   * first page by id (those needing a person first), and `total`, `matched` and `attention` count
   * only those rows (`pages` is 1): not counts of the deployment, never to be shown as such.
   */
  counting?: true;
}

/**
 * One page of the status list: search, then those needing a person first (so a broken connection
 * among 100,000 healthy ones is on page 1), then pages of `size`. A page past the last is the last.
 */
export function pageOfHealth(all: readonly ConnectionHealth[], query: StatusPageQuery): StatusPage {
  const size = query.size ?? STATUS_PAGE_SIZE;
  const words = (query.q ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  const matches = words.length
    ? all.filter((c) => {
        const text = `${c.id} ${c.account ?? ''} ${c.provider}`.toLowerCase();
        return words.every((w) => text.includes(w));
      })
    : all;
  const attention: ConnectionHealth[] = [];
  const healthy: ConnectionHealth[] = [];
  for (const c of matches) (c.remedy === null ? healthy : attention).push(c);
  // Past one page, ids in order make pages a person can find their way in (and stable between
  // requests); below, the catalog's order (the file's) as always.
  if (all.length > size) for (const group of [attention, healthy]) group.sort(byId);
  const ordered = attention.length ? attention.concat(healthy) : healthy;
  const pages = Math.max(1, Math.ceil(ordered.length / size));
  const page = Math.min(Math.max(1, query.page), pages);
  return {
    items: ordered.slice((page - 1) * size, page * size),
    total: all.length,
    matched: matches.length,
    attention: attention.length,
    page,
    pages,
  };
}

/** `/api/status` as JSON with `top`: ids strictly after `after`, ordered by id (stable under change). */
export function healthAfter(
  all: readonly ConnectionHealth[],
  top: number,
  after: string | undefined,
): { items: ConnectionHealth[]; next?: string } {
  const sorted = all.filter((c) => after === undefined || c.id > after).sort(byId);
  const items = sorted.slice(0, top);
  return sorted.length > top ? { items, next: items[items.length - 1]!.id } : { items };
}

export function byId(a: ConnectionHealth, b: ConnectionHealth): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

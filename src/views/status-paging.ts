import { STATUS_PAGE_SIZE, type StatusPage } from '../lib/health/status-paging.js';
import { escapeHtml } from './page.js';

/**
 * The status page's search box and page links (docs/status-and-rotation.md): shown once there are
 * more connections than one page holds, or a search is under way. Links keep `code=` when the page
 * was opened with one (and only then), as every link of the page does.
 */

export function statusPath(params: { q?: string; page?: number }, key: string | undefined): string {
  const query = new URLSearchParams();
  if (params.q) query.set('q', params.q);
  if (params.page && params.page > 1) query.set('page', String(params.page));
  if (key) query.set('code', key);
  const text = query.toString();
  return text ? `/api/status?${text}` : '/api/status';
}

/** Whether the page needs the search box and pager at all. */
export function isPaged(page: StatusPage, q: string | undefined): boolean {
  return page.total > STATUS_PAGE_SIZE || Boolean(q);
}

export function searchForm(q: string | undefined, key: string | undefined): string {
  const hidden = key ? `<input type="hidden" name="code" value="${escapeHtml(key)}">` : '';
  return `<form class="search" method="get" action="/api/status" role="search"><label for="q">Find a connection</label> <input id="q" name="q" type="search" value="${escapeHtml(q ?? '')}" placeholder="id or account" maxlength="200">${hidden} <button type="submit">Search</button>${q ? ` <a href="${escapeHtml(statusPath({}, key))}">Show all</a>` : ''}</form>`;
}

export function pager(page: StatusPage, q: string | undefined, key: string | undefined): string {
  const from = page.matched === 0 ? 0 : (page.page - 1) * STATUS_PAGE_SIZE + 1;
  const to = Math.min(page.page * STATUS_PAGE_SIZE, page.matched);
  const link = (n: number, label: string, rel: string) =>
    `<a rel="${rel}" href="${escapeHtml(statusPath({ q, page: n }, key))}">${label}</a>`;
  const parts = [
    page.page > 1 ? link(page.page - 1, '← Previous', 'prev') : '',
    `<span class="muted">${from}–${to} of ${page.matched}${q ? ` matching (of ${page.total})` : ''}, page ${page.page} of ${page.pages}</span>`,
    page.page < page.pages ? link(page.page + 1, 'Next →', 'next') : '',
  ].filter(Boolean);
  return `<nav class="pager" aria-label="Pages">${parts.join(' ')}</nav>`;
}

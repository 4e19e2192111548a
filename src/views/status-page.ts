import type { Deadline } from '../lib/health/deadlines.js';
import type { ConnectionHealth } from '../lib/health/status-service.js';
import type { HttpAnswer } from '../lib/http/answer.js';
import { startPath } from './links.js';
import { escapeHtml, htmlPage } from './page.js';

const WORDS: Record<ConnectionHealth['status'], string> = {
  connected: 'Connected',
  needs_consent: 'Needs consent',
  not_connected: 'Not connected',
};

const DEADLINE_WORDS: Record<Deadline['kind'], string> = {
  refresh_token_inactivity: 'refresh token idle limit',
  hard_expiry: 'consent expires',
  client_secret_expiry: 'client secret expires',
};

/** "in 12 days" / "3 days ago": what a person reads first; the exact time is in the title. */
function relative(at: string, now: number): string {
  const days = Math.round((Date.parse(at) - now) / 86_400_000);
  if (days === 0) return 'today';
  return days > 0 ? `in ${days} day${days === 1 ? '' : 's'}` : `${-days} day${days === -1 ? '' : 's'} ago`;
}

function time(at: string | null, now: number): string {
  return at
    ? `<time datetime="${escapeHtml(at)}" title="${escapeHtml(at)}">${relative(at, now)}</time>`
    : '—';
}

/** Account pinning: only a consent begun from this link may connect another account. */
function changeAccount(c: ConnectionHealth, key: string | undefined): string {
  if (c.status === 'not_connected') return '';
  return ` <a class="muted" href="${escapeHtml(startPath(c.id, key, true))}">Change account</a>`;
}

function row(c: ConnectionHealth, key: string | undefined, now: number): string {
  const href = startPath(c.id, key);
  const action = c.status === 'connected' ? 'Reconnect' : 'Connect';
  const deadline = c.nextDeadline
    ? `<span class="${c.warning ? 'warn' : ''}">${DEADLINE_WORDS[c.nextDeadline.kind]} ${time(c.nextDeadline.at, now)}</span>`
    : '—';
  // data-label names each cell where a narrow window shows the rows as cards (see the page style).
  return `<tr>
<td><code>${escapeHtml(c.id)}</code><br><span class="muted">${escapeHtml(c.provider)}, ${escapeHtml(c.flow.replace('_', ' '))}</span></td>
<td data-label="Status"><span class="badge ${c.status}">${WORDS[c.status]}</span>${c.lastError ? `<br><span class="muted">${escapeHtml(c.lastError)}</span>` : ''}</td>
<td data-label="Account">${escapeHtml(c.account ?? '—')}</td>
<td data-label="Last refresh">${time(c.refreshedAt, now)}</td>
<td data-label="Next deadline">${deadline}</td>
<td><a class="button" href="${escapeHtml(href)}">${action}</a>${changeAccount(c, key)}</td>
</tr>`;
}

/** The status page (no script): a row per connection, with a Connect / Reconnect link each. */
export function statusPage(
  connections: ConnectionHealth[],
  options: { key: string | undefined; now: number },
): HttpAnswer {
  const rows = connections.map((c) => row(c, options.key, options.now)).join('\n');
  const attention = connections.filter((c) => c.status !== 'connected' || c.warning).length;
  const summary = attention
    ? `<p class="warn">${attention} of ${connections.length} connection${connections.length === 1 ? '' : 's'} need${attention === 1 ? 's' : ''} attention.</p>`
    : `<p class="ok">All ${connections.length} connection${connections.length === 1 ? ' is' : 's are'} healthy.</p>`;
  const table = connections.length
    ? `${summary}<table><thead><tr><th>Connection</th><th>Status</th><th>Account</th><th>Last refresh</th><th>Next deadline</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p>No connections are configured. Add them to <code>connections.json</code>.</p>';
  return htmlPage(200, 'Token broker status', `<h1>Token broker status</h1>${table}`);
}

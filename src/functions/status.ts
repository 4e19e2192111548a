import { z } from 'zod';
import { escapeHtml, htmlPage, prefersHtml } from '../lib/http/html.js';
import { parseQuery } from '../lib/http/request.js';
import type { ConnectionHealth } from '../lib/status-service.js';
import { adapter, type BrokerSource } from './adapter.js';

const query = z.object({ code: z.string().max(512).optional() });

const WORDS: Record<ConnectionHealth['status'], string> = {
  connected: 'Connected',
  needs_consent: 'Needs consent',
  not_connected: 'Not connected',
};

/** `GET /api/status`: every connection's health, JSON by default and a page for browsers. */
export const statusHandler = (source: BrokerSource) =>
  adapter(source, async (broker, request) => {
    const q = parseQuery(request, query);
    const connections = await broker.status.health();
    if (!prefersHtml(request.headers.get('accept'))) {
      return { status: 200, headers: { 'Cache-Control': 'no-store' }, jsonBody: { connections } };
    }
    // Opened with ?code=, the page's links carry the same key so they work in the same browser.
    const key = q.code ? `&code=${encodeURIComponent(q.code)}` : '';
    const rows = connections
      .map((c) => {
        const href = `/api/start?connection=${encodeURIComponent(c.id)}${key}`;
        const action = c.status === 'connected' ? 'Reconnect' : 'Connect';
        return `<tr><td><code>${escapeHtml(c.id)}</code><br><span class="muted">${escapeHtml(c.provider)}</span></td>
<td class="${c.status}">${WORDS[c.status]}</td><td>${escapeHtml(c.account ?? '—')}</td>
<td>${escapeHtml(c.refreshedAt ?? '—')}</td><td>${escapeHtml(c.lastError ?? '')}</td>
<td><a class="button" href="${escapeHtml(href)}">${action}</a></td></tr>`;
      })
      .join('\n');
    const table = connections.length
      ? `<table><thead><tr><th>Connection</th><th>Status</th><th>Account</th><th>Last refresh</th><th>Last error</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
      : '<p>No connections are configured.</p>';
    return htmlPage(200, 'Token broker status', `<h1>Token broker status</h1>${table}`);
  });

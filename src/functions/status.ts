import * as z from 'zod';
import { pageOfHealth } from '../lib/health/status-paging.js';
import { parseQuery, prefersHtml } from '../lib/http/request.js';
import { statusPage } from '../views/status-page.js';
import { adapter, type BrokerSource } from './adapter.js';
import { keyParam, linkKey } from './query.js';
import { jsonHealthPage, statusListQuery } from './status-list.js';

const query = z.object({ code: keyParam, ...statusListQuery });

/**
 * `GET /api/status`: every connection's health, JSON by default and a page (no script) for browsers.
 * The page comes in pages of 200 with a search (`q`, `page`); JSON stays whole unless `top` asks
 * for pages (`status-list.ts`).
 */
export const statusHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const q = parseQuery(request.query, query);
      const connections = await broker.status.healthForPage();
      if (!prefersHtml(request.headers.get('accept'))) {
        return jsonHealthPage(broker, connections, q);
      }
      // Opened with ?code=, the page's links carry the same key so they work in the same browser.
      const key = linkKey(broker, q.code);
      const page = pageOfHealth(connections, { q: q.q, page: q.page ?? 1 });
      return statusPage(connections, {
        key,
        now: broker.clock.now(),
        catalog: page.items.flatMap((h) => broker.connections.peek(h.id) ?? []),
        paging: { page, q: q.q },
      });
    },
    { people: true },
  );

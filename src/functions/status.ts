import * as z from 'zod';
import { parseQuery, prefersHtml } from '../lib/http/request.js';
import { statusPage } from '../views/status-page.js';
import { adapter, type BrokerSource } from './adapter.js';
import { keyParam, linkKey } from './query.js';

const query = z.object({ code: keyParam });

/** `GET /api/status`: every connection's health, JSON by default and a page (no script) for browsers. */
export const statusHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const q = parseQuery(request.query, query);
      const connections = await broker.status.health();
      if (!prefersHtml(request.headers.get('accept'))) {
        return { status: 200, headers: { 'Cache-Control': 'no-store' }, jsonBody: { connections } };
      }
      // Opened with ?code=, the page's links carry the same key so they work in the same browser.
      const key = linkKey(broker, q.code);
      return statusPage(connections, {
        key,
        now: broker.clock.now(),
        catalog: await broker.connections.all(),
      });
    },
    { people: true },
  );

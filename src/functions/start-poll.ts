import { z } from 'zod';
import { CONNECTION_ID } from '../lib/config/connections.js';
import { prefersHtml } from '../lib/http/html.js';
import { parseQuery } from '../lib/http/request.js';
import { adapter, type BrokerSource } from './adapter.js';
import { devicePollErrorPage, devicePollJson, devicePollPage } from './device-page.js';
import { connectionParam } from './query.js';

const query = z.object({
  connection: connectionParam,
  attempt: z.string({ error: 'is required' }).min(1, 'is required').max(4096, 'is too long'),
  code: z.string().max(512).optional(),
});

/**
 * `GET /api/start/poll`: one poll of a device-code consent, driven by the client (at most one token
 * request per call). JSON `{status: pending | connected | declined | expired, account?}`; a page for
 * a browser without JavaScript.
 */
export const startPollHandler = (source: BrokerSource) =>
  adapter(
    source,
    async (broker, request) => {
      const q = parseQuery(request, query);
      const result = await broker.consent.pollDevice(q.connection, q.attempt);
      if (prefersHtml(request.headers.get('accept'))) {
        return devicePollPage(q.connection, result, {
          key: q.code,
          expectedAccount: broker.connections.get(q.connection).expectedAccount,
        });
      }
      return devicePollJson(q.connection, result, { publicUrl: broker.settings.publicUrl, key: q.code });
    },
    (err, broker, request) => {
      if (!prefersHtml(request.headers.get('accept'))) return undefined;
      const connection = request.query.get('connection') ?? '';
      return devicePollErrorPage(err, CONNECTION_ID.test(connection) ? connection : undefined, {
        publicUrl: broker.settings.publicUrl,
        key: request.query.get('code') ?? undefined,
        logger: broker.logger,
      });
    },
  );

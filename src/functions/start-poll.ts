import * as z from 'zod';
import { CONNECTION_ID } from '../lib/config/connections.js';
import type { DevicePoll } from '../lib/consent/device-service.js';
import { parseQuery, prefersHtml } from '../lib/http/request.js';
import { devicePollPage } from '../views/device-page.js';
import { errorPage } from '../views/error-page.js';
import { pollPath, startPath } from '../views/links.js';
import { adapter, type BrokerSource } from './adapter.js';
import { connectionParam, keyParam, linkKey } from './query.js';

const query = z.object({
  connection: connectionParam,
  attempt: z.string({ error: 'is required' }).min(1, 'is required').max(4096, 'is too long'),
  code: keyParam,
});

/**
 * A poll's JSON: `{status, account?}`, plus `pollUrl` and `interval` while pending, `detail` when
 * ended. `poll` is the next poll's path (`/api/start/poll`, or the invitations' anonymous route).
 */
export function devicePollJson(
  connectionId: string,
  result: DevicePoll,
  publicUrl: string,
  poll: (connectionId: string, attempt: string) => string,
) {
  let body: Record<string, unknown>;
  switch (result.status) {
    case 'pending':
      body = {
        status: 'pending',
        interval: result.interval,
        expiresIn: result.expiresIn,
        pollUrl: `${publicUrl}${poll(connectionId, result.attempt)}`,
      };
      break;
    case 'connected':
      body = { status: 'connected', account: result.account };
      break;
    case 'declined':
    case 'expired':
      body = { status: result.status, detail: result.detail };
      if (result.providerError) {
        const { error, aadsts } = result.providerError;
        body.providerError = aadsts === undefined ? { error } : { error, aadsts };
      }
      break;
  }
  return {
    status: 200,
    headers: { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
    jsonBody: body,
  };
}

/**
 * `GET /api/start/poll`: one poll of a device-code consent, driven by the client (at most one token
 * request per call). JSON `{status: pending | connected | declined | expired, account?}`; a page for
 * a browser without JavaScript.
 */
export const startPollHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const q = parseQuery(request.query, query);
      const key = linkKey(broker, q.code);
      const result = await broker.consent.pollDevice(q.connection, q.attempt);
      if (prefersHtml(request.headers.get('accept'))) {
        return devicePollPage(q.connection, result, {
          key,
          expectedAccount: (await broker.connections.get(q.connection)).expectedAccount,
        });
      }
      return devicePollJson(q.connection, result, broker.settings.publicUrl, (c, a) => pollPath(c, a, key));
    },
    {
      people: true,
      onError: (err, broker, request) => {
        if (!prefersHtml(request.headers.get('accept'))) return undefined;
        const connection = request.query.get('connection') ?? '';
        const key = linkKey(broker, request.query.get('code'));
        return errorPage(err, {
          publicUrl: broker.settings.publicUrl,
          logger: broker.logger,
          action: CONNECTION_ID.test(connection)
            ? { href: startPath(connection, key), label: 'Start again' }
            : undefined,
        });
      },
    },
  );

import type { HttpRequest } from '@azure/functions';
import * as z from 'zod';
import type { Broker } from '../lib/broker.js';
import { antiForgeryToken, checkAntiForgery } from '../lib/http/anti-forgery.js';
import { problemResponse } from '../lib/http/problem.js';
import { parseQuery, prefersHtml, wantsJson } from '../lib/http/request.js';
import { confirmPage } from '../views/confirm-page.js';
import { devicePollPage } from '../views/device-page.js';
import { errorPage } from '../views/error-page.js';
import { adapter, type BrokerSource } from './adapter.js';
import { beginConsent } from './begin-consent.js';
import { antiForgeryCookie, readForm } from './form.js';
import { connectionParam } from './query.js';
import { devicePollJson } from './start-poll.js';

/**
 * The anonymous poll of a device-code consent begun from an invitation: the sealed attempt is the
 * capability (AES-GCM, unguessable), and the route accepts only attempts that carry an invitation.
 */
export function connectPollPath(connectionId: string, attempt: string): string {
  return `/api/connect/poll?${new URLSearchParams({ connection: connectionId, attempt })}`;
}

/** Whatever fails on these routes, a browser gets a page and anything else problem+json. */
function answerError(err: unknown, broker: Broker, request: HttpRequest) {
  const options = { publicUrl: broker.settings.publicUrl, logger: broker.logger };
  return wantsJson(request.headers.get('accept'))
    ? problemResponse(err, options.publicUrl, options.logger)
    : errorPage(err, options);
}

/** The token from the route; the host gives it as `{token}`. */
function tokenOf(request: HttpRequest): string {
  return request.params.token ?? '';
}

/**
 * `GET /api/connect/{token}` (anonymous): the page a mailbox owner opens from an invitation. It names
 * the connection, the account, what the service can do and until when, and begins nothing: the one
 * button POSTs back with the anti-forgery token. Unknown, expired, used, revoked: one 410 page.
 * `POST`: checks the anti-forgery token (and `Sec-Fetch-Site`), then begins consent as `/api/start`.
 */
export const connectHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      if (request.method === 'POST') {
        // Checked before the token is even looked up: a forged POST learns nothing and costs no I/O.
        checkAntiForgery(request.headers, await readForm(request));
        const { invitation, connection } = await broker.invitations.resolve(tokenOf(request));
        return beginConsent(
          broker,
          request,
          connection.id,
          undefined,
          { replace: invitation.replace, invitation: invitation.id },
          { key: undefined, pollPath: connectPollPath, noStartAgain: true },
        );
      }
      const { invitation, connection } = await broker.invitations.resolve(tokenOf(request));
      const token = antiForgeryToken(request.headers);
      const url = new URL(request.url);
      return {
        ...confirmPage({
          connection,
          action: url.pathname,
          antiForgery: token,
          expiresAt: invitation.expiresAt,
          replace: invitation.replace,
        }),
        cookies: [antiForgeryCookie(token, broker.settings.publicUrl)],
      };
    },
    { onError: answerError },
  );

const pollQuery = z.object({
  connection: connectionParam,
  attempt: z.string({ error: 'is required' }).min(1, 'is required').max(4096, 'is too long'),
});

/** `GET /api/connect/poll` (anonymous): one poll of a device-code consent begun from an invitation. */
export const connectPollHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const q = parseQuery(request.query, pollQuery);
      const result = await broker.consent.pollDevice(q.connection, q.attempt, { invitationOnly: true });
      if (prefersHtml(request.headers.get('accept'))) {
        return devicePollPage(q.connection, result, {
          key: undefined,
          expectedAccount: (await broker.connections.get(q.connection)).expectedAccount,
          pollPath: connectPollPath,
          noStartAgain: true,
        });
      }
      return devicePollJson(q.connection, result, broker.settings.publicUrl, connectPollPath);
    },
    {
      onError: (err, broker, request) => {
        if (!prefersHtml(request.headers.get('accept'))) return undefined;
        return errorPage(err, { publicUrl: broker.settings.publicUrl, logger: broker.logger });
      },
    },
  );

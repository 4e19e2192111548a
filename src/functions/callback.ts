import type { Cookie, HttpRequest } from '@azure/functions';
import * as z from 'zod';
import { consentCookieName } from '../lib/consent/consent-service.js';
import { BrokerError } from '../lib/errors.js';
import { explain } from '../lib/health/remedies.js';
import { problemResponse } from '../lib/http/problem.js';
import { parseCookies, parseQuery, wantsJson } from '../lib/http/request.js';
import { connectedPage } from '../views/connected-page.js';
import { errorPage } from '../views/error-page.js';
import { adapter, type BrokerSource } from './adapter.js';

const text = z.string().max(4096, 'is too long').optional();
const query = z.object({
  code: text,
  state: z.string().max(512, 'is too long').optional(),
  error: text,
  error_description: text,
});

/** The attempt's cookie has done its job either way. */
function clearStateCookie(request: HttpRequest): Cookie[] {
  const state = request.query.get('state');
  return state
    ? [
        {
          name: consentCookieName(state),
          value: '',
          maxAge: 0,
          path: '/api',
          httpOnly: true,
          sameSite: 'Lax',
        },
      ]
    : [];
}

/** `GET /api/callback`: finishes consent and says which account is now connected; never shows a token. */
export const callbackHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const q = parseQuery(request.query, query);
      const result = await broker.consent.callback(
        { code: q.code, state: q.state, error: q.error, errorDescription: q.error_description },
        parseCookies(request.headers.get('cookie')),
      );
      const cookies = clearStateCookie(request);
      if (wantsJson(request.headers.get('accept')))
        return { status: 200, jsonBody: result, headers: { 'Cache-Control': 'no-store' }, cookies };
      return { ...connectedPage(result.connectionId, result.account), cookies };
    },
    {
      onError: (err, broker, request) => {
        // A failure that names its connection tells the person what to do next (DESIGN.md, remedies).
        const connection =
          err instanceof BrokerError && err.connectionId
            ? broker.connections.peek(err.connectionId)
            : undefined;
        if (connection) explain(err, { connection, publicUrl: broker.settings.publicUrl });
        const options = { publicUrl: broker.settings.publicUrl, logger: broker.logger };
        const answer = wantsJson(request.headers.get('accept'))
          ? problemResponse(err, options.publicUrl, options.logger)
          : errorPage(err, options);
        return { ...answer, cookies: clearStateCookie(request) };
      },
    },
  );

import type { Cookie, HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { consentCookieName } from '../lib/consent/consent-service.js';
import { escapeHtml, htmlPage } from '../lib/http/html.js';
import { problemResponse, toProblem } from '../lib/http/problem.js';
import { parseCookies, parseQuery } from '../lib/http/request.js';
import { adapter, type BrokerSource } from './adapter.js';

const text = z.string().max(4096, 'is too long').optional();
const query = z.object({
  code: text,
  state: z.string().max(512, 'is too long').optional(),
  error: z.string().max(256, 'is too long').optional(),
  error_description: text,
});

/** Wants JSON only when it says so; the callback is normally opened by a person's browser. */
const wantsJson = (request: HttpRequest) =>
  /application\/(problem\+)?json/.test(request.headers.get('accept') ?? '');

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
    async (broker, request) => {
      const q = parseQuery(request, query);
      const result = await broker.consent.callback(
        { code: q.code, state: q.state, error: q.error, errorDescription: q.error_description },
        parseCookies(request.headers.get('cookie')),
      );
      const cookies = clearStateCookie(request);
      if (wantsJson(request))
        return { status: 200, jsonBody: result, headers: { 'Cache-Control': 'no-store' }, cookies };
      const who = result.account ? `as <strong>${escapeHtml(result.account)}</strong>` : '';
      const page = htmlPage(
        200,
        'Connected',
        `<h1>Connected</h1><p>Connection <code>${escapeHtml(result.connectionId)}</code> is now connected ${who}.</p>
<p>The broker keeps its refresh token and hands out access tokens at <code>/api/token?connection=${escapeHtml(result.connectionId)}</code>. You can close this window.</p>`,
      );
      return { ...page, cookies };
    },
    (err, broker, request) => {
      const cookies = clearStateCookie(request);
      if (wantsJson(request))
        return { ...problemResponse(err, broker.settings.publicUrl, broker.logger), cookies };
      const p = toProblem(err, broker.settings.publicUrl, broker.logger);
      const provider = p.providerError
        ? `<p class="muted">Provider said: <code>${escapeHtml(p.providerError.error)}</code>${p.providerError.aadsts ? ` (AADSTS${escapeHtml(p.providerError.aadsts)})` : ''}</p>`
        : '';
      const page = htmlPage(
        p.status,
        p.title,
        `<h1>${escapeHtml(p.title)}</h1><p>${escapeHtml(p.detail)}</p>${provider}<p class="muted">Status ${p.status}, code <code>${escapeHtml(p.code)}</code></p>`,
      );
      return { ...page, cookies };
    },
  );

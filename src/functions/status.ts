import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import * as z from 'zod';
import type { Person } from '../lib/auth/person-auth.js';
import type { Broker } from '../lib/broker.js';
import { CONNECTION_ID } from '../lib/config/connections.js';
import { BrokerError } from '../lib/errors.js';
import { antiForgeryToken, checkAntiForgery } from '../lib/http/anti-forgery.js';
import { parseQuery, prefersHtml } from '../lib/http/request.js';
import { INVITATION_ID } from '../lib/invitations/invitation-store.js';
import { inviteNotice, plainNotice } from '../views/status-invitations.js';
import { statusPage } from '../views/status-page.js';
import { adapter, type BrokerSource } from './adapter.js';
import { antiForgeryCookie, readForm } from './form.js';
import { actorOf } from './invitations.js';
import { keyParam, linkKey } from './query.js';

const query = z.object({ code: keyParam });

/** What the status page's forms may ask (DESIGN.md, "Invitations": every form with the token). */
const action = z.discriminatedUnion('do', [
  z.object({ do: z.literal('invite'), connection: z.string().regex(CONNECTION_ID) }),
  z.object({
    do: z.literal('revoke'),
    connection: z.string().regex(CONNECTION_ID),
    invitation: z.string().regex(INVITATION_ID),
  }),
]);

/** Runs one form; the notice the page then shows (HTML), and whether it shows a new link. */
async function runForm(
  broker: Broker,
  form: URLSearchParams,
  person: Person | undefined,
): Promise<{ notice: string; link: boolean }> {
  const parsed = action.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) throw new BrokerError('invalid_request', 'The form is not one this page sends.');
  const a = parsed.data;
  if (a.do === 'invite') {
    const created = await broker.invitations.create(a.connection, {}, actorOf(person));
    return { notice: inviteNotice(a.connection, created), link: true };
  }
  await broker.invitations.revoke(a.connection, a.invitation, actorOf(person));
  return {
    notice: plainNotice(`The invitation for ${a.connection} is revoked; its link no longer works.`),
    link: false,
  };
}

async function page(
  broker: Broker,
  request: HttpRequest,
  key: string | undefined,
  done?: { notice: string; link: boolean },
): Promise<HttpResponseInit> {
  const connections = await broker.status.health();
  const token = antiForgeryToken(request.headers);
  const url = new URL(request.url);
  const answer = statusPage(connections, {
    key,
    now: broker.clock.now(),
    catalog: await broker.connections.all(),
    admin: {
      forms: { action: `${url.pathname}${url.search}`, antiForgery: token },
      invitations: await broker.invitations.pending(),
      notice: done?.notice,
      scriptNonce: done?.link ? randomBytes(16).toString('base64') : undefined,
    },
  });
  return { ...answer, cookies: [antiForgeryCookie(token, broker.settings.publicUrl)] };
}

/**
 * `GET /api/status`: every connection's health, JSON by default and a page for browsers, with the
 * admin forms (invite, revoke). `POST`: one of those forms, checked for its anti-forgery token;
 * answers the page again, showing a new link once.
 */
export const statusHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, person }) => {
      const q = parseQuery(request.query, query);
      // Opened with ?code=, the page's links carry the same key so they work in the same browser.
      const key = linkKey(broker, q.code);
      if (request.method === 'POST') {
        const form = await readForm(request);
        checkAntiForgery(request.headers, form);
        return page(broker, request, key, await runForm(broker, form, person));
      }
      if (!prefersHtml(request.headers.get('accept'))) {
        const connections = await broker.status.health();
        return { status: 200, headers: { 'Cache-Control': 'no-store' }, jsonBody: { connections } };
      }
      return page(broker, request, key);
    },
    { people: true },
  );

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
import { deleteConfirmation } from '../views/status-admin.js';
import { inviteNotice, plainNotice } from '../views/status-invitations.js';
import { statusPage } from '../views/status-page.js';
import { adapter, type BrokerSource } from './adapter.js';
import { antiForgeryCookie, readForm } from './form.js';
import { actorOf } from './invitations.js';
import { keyParam, linkKey } from './query.js';
import { jsonHealthPage, statusListQuery } from './status-list.js';

const query = z.object({ code: keyParam, ...statusListQuery });

/** What the status page's forms may ask (docs/design.md, "Invitations": every form with the token). */
const optional = (max: number) =>
  z
    .string()
    .max(max)
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined));
const action = z.discriminatedUnion('do', [
  z.object({ do: z.literal('invite'), connection: z.string().regex(CONNECTION_ID) }),
  z.object({
    do: z.literal('add'),
    id: z.string(),
    template: z.string().max(63),
    expectedAccount: optional(256),
    displayName: optional(100),
  }),
  z.object({
    do: z.literal('delete'),
    connection: z.string().regex(CONNECTION_ID),
    confirm: z.literal('yes').optional(),
  }),
  z.object({
    do: z.literal('revoke'),
    connection: z.string().regex(CONNECTION_ID),
    invitation: z.string().regex(INVITATION_ID),
  }),
]);

interface Done {
  notice: string;
  link: boolean;
  /** A refused form (4xx): the page shows why, with that status. */
  status?: number;
}

/** Runs one form; the notice the page then shows (HTML), and whether it shows a new link. */
async function runForm(
  broker: Broker,
  form: URLSearchParams,
  person: Person | undefined,
  forms: { action: string; antiForgery: string },
): Promise<Done> {
  const parsed = action.safeParse(Object.fromEntries(form.entries()));
  if (!parsed.success) throw new BrokerError('invalid_request', 'The form is not one this page sends.');
  const a = parsed.data;
  const by = actorOf(person);
  if (a.do === 'add') {
    const definition: Record<string, unknown> = { template: a.template };
    if (a.expectedAccount) definition.expectedAccount = a.expectedAccount;
    if (a.displayName) definition.displayName = a.displayName;
    await broker.definitions.putConnection(
      a.id,
      definition,
      { name: by.name ?? by.id ?? 'unknown', ...by },
      {
        ifNoneMatch: '*',
      },
    );
    return {
      notice: plainNotice(`Connection ${a.id} is added. Invite its owner to connect it.`),
      link: false,
    };
  }
  if (a.do === 'delete') {
    if (a.confirm !== 'yes') {
      return { notice: deleteConfirmation(a.connection, forms, forms.action), link: false };
    }
    await broker.definitions.deleteConnection(
      a.connection,
      { name: by.name ?? by.id ?? 'unknown', ...by },
      {},
    );
    return { notice: plainNotice(`Connection ${a.connection} is deleted.`), link: false };
  }
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
  q: { q?: string; page?: number },
  done?: Done,
): Promise<HttpResponseInit> {
  // One page of 200 at most (with a search past 200): only its connections' settings are looked up.
  const [paged, templates, invitations] = await Promise.all([
    broker.status.page({ q: q.q, page: q.page ?? 1 }),
    broker.connections.templateNames(),
    broker.invitations.pending(),
  ]);
  const catalog = paged.items.flatMap((h) => broker.connections.peek(h.id) ?? []);
  const forms = formsOf(request, key);
  const answer = statusPage(paged.items, {
    key,
    now: broker.clock.now(),
    catalog,
    paging: { page: paged, q: q.q },
    admin: {
      forms,
      invitations,
      notice: done?.notice,
      scriptNonce: done?.link ? randomBytes(16).toString('base64') : undefined,
      managed: new Set(catalog.filter((c) => !broker.connections.isDeclared(c.id)).map((c) => c.id)),
      templates,
    },
  });
  return {
    ...answer,
    status: done?.status ?? answer.status,
    cookies: [antiForgeryCookie(forms.antiForgery, broker.settings.publicUrl)],
  };
}

/** The forms post back here, with the key only when links may carry it (`linkKey`: never under easyauth). */
function formsOf(request: HttpRequest, key: string | undefined) {
  const action = key ? `/api/status?${new URLSearchParams({ code: key })}` : '/api/status';
  return { action, antiForgery: antiForgeryToken(request.headers) };
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
        let done: Done;
        try {
          done = await runForm(broker, form, person, formsOf(request, key));
        } catch (err) {
          // A refused form (bad id, exists already, declared…): the page again, saying why, with its 4xx.
          if (!(err instanceof BrokerError) || err.status >= 500) throw err;
          done = { notice: plainNotice(err.message), link: false, status: err.status };
        }
        return page(broker, request, key, q, done);
      }
      if (!prefersHtml(request.headers.get('accept'))) {
        return jsonHealthPage(broker, q);
      }
      return page(broker, request, key, q);
    },
    { people: true },
  );

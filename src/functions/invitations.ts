import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import * as z from 'zod';
import type { Person } from '../lib/auth/person-auth.js';
import { CONNECTION_ID } from '../lib/config/connections.js';
import { parseDuration } from '../lib/config/duration.js';
import { BrokerError } from '../lib/errors.js';
import { type Actor, INVITATION_ID } from '../lib/invitations/invitation-store.js';
import { type AdapterOptions, adapter, type BrokerSource } from './adapter.js';

/**
 * Who may manage invitations: the admins of "Who may ask" (docs/design.md): the function key under
 * `ADMIN_AUTH=key`, people with `ADMIN_ROLE` under easyauth, and services whose app token carries it.
 */
const ADMIN: AdapterOptions = { admin: true };

/** An admin body is at most 64 KiB (docs/design.md `payload_too_large`); an invitation's is a few bytes. */
const MAX_BODY_BYTES = 64 * 1024;

const createBody = z
  .object({
    expiresIn: z
      .string()
      .refine((v) => parseDuration(v) !== undefined, 'must be an ISO-8601 duration such as P7D')
      .optional(),
    note: z.string().max(200, 'is longer than 200 characters').optional(),
    replace: z.boolean().optional(),
  })
  .strict();

/** `{name, id}` of docs/design.md's entries: the person, or the function key. */
export function actorOf(person: Person | undefined): Actor {
  if (!person) return { name: 'function-key' };
  const actor: Actor = {};
  if (person.name) actor.name = person.name;
  if (person.id) actor.id = person.id;
  return actor;
}

function connectionOf(request: HttpRequest): string {
  const id = request.params.id ?? '';
  if (!CONNECTION_ID.test(id)) {
    throw new BrokerError('unknown_connection', 'There is no such connection.');
  }
  return id;
}

async function readJson(request: HttpRequest): Promise<unknown> {
  if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY_BYTES) {
    throw new BrokerError('payload_too_large', 'The body is larger than 64 KiB.');
  }
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new BrokerError('payload_too_large', 'The body is larger than 64 KiB.');
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new BrokerError('invalid_request', 'The body is not JSON.');
  }
}

function parseCreate(value: unknown): z.output<typeof createBody> {
  const parsed = createBody.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.join('.') || 'body';
  throw new BrokerError('invalid_request', `Field "${path}": ${issue.message}.`);
}

/**
 * `POST /api/connections/{id}/invitations` → 201 `{id, url, expiresAt, replace}`;
 * `GET` → 200 `{invitations: […]}` (never a token).
 */
export const invitationsHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, person, by }): Promise<HttpResponseInit> => {
      const connection = connectionOf(request);
      if (request.method === 'GET') {
        const invitations = await broker.invitations.list(connection);
        return { status: 200, headers: { 'Cache-Control': 'no-store' }, jsonBody: { invitations } };
      }
      const body = parseCreate(await readJson(request));
      const expiresInMs = body.expiresIn === undefined ? undefined : parseDuration(body.expiresIn);
      const created = await broker.invitations.create(
        connection,
        { expiresInMs, note: body.note, replace: body.replace },
        by ?? actorOf(person),
      );
      return {
        status: 201,
        headers: { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
        jsonBody: created,
      };
    },
    ADMIN,
  );

/** `DELETE /api/connections/{id}/invitations/{invitation}` → 204. */
export const invitationHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, person, by }) => {
      const connection = connectionOf(request);
      const id = request.params.invitation ?? '';
      if (!INVITATION_ID.test(id)) throw new BrokerError('not_found', 'There is no such invitation.');
      await broker.invitations.revoke(connection, id, by ?? actorOf(person));
      return { status: 204, headers: { 'Cache-Control': 'no-store' } };
    },
    ADMIN,
  );

import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import * as z from 'zod';
import type { DefinitionSource } from '../lib/config/catalog.js';
import { CONNECTION_ID } from '../lib/config/connections.js';
import type { WriteCondition } from '../lib/definitions/definition-store.js';
import { BrokerError } from '../lib/errors.js';
import { parseQuery } from '../lib/http/request.js';

/** The HTTP side the admin routes share (docs/connections.md): bodies, ETags, conditions, pages. */

/** An admin body larger than this is 413 `payload_too_large`. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;
export const DEFAULT_TOP = 100;
export const MAX_TOP = 1000;

/** The `{id}` / `{name}` of the route, checked against the id rule. */
export function routeName(request: HttpRequest, param: 'id' | 'name', what: string): string {
  const value = request.params[param] ?? '';
  if (!CONNECTION_ID.test(value)) {
    throw new BrokerError(
      'invalid_request',
      `The ${what} in the URL must be 1-63 lowercase letters, digits and dashes, starting with a letter or digit.`,
    );
  }
  return value;
}

/** The JSON body, at most 64 KiB; anything else is a 4xx naming what is wrong. */
export async function readJsonBody(request: HttpRequest): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_ADMIN_BODY_BYTES) throw tooLarge();
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > MAX_ADMIN_BODY_BYTES) throw tooLarge();
  if (bytes.length === 0) throw invalidBody('the body is empty: send the definition as JSON');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalidBody('the body is not valid JSON');
  }
}

function tooLarge(): BrokerError {
  return new BrokerError(
    'payload_too_large',
    `A definition is at most ${MAX_ADMIN_BODY_BYTES / 1024} KiB of JSON.`,
  );
}

function invalidBody(message: string): BrokerError {
  return new BrokerError('invalid_request', `The definition is not valid: ${message}.`, {
    errors: [{ path: '', message }],
  });
}

/** A store etag as the `ETag` header carries it (a strong, quoted entity tag). */
export function httpEtag(etag: string): string {
  return `"${etag}"`;
}

const ENTITY_TAG = /^(?:W\/)?"([\x21\x23-\x7e]*)"$/;

/** `If-Match` / `If-None-Match` of a write: one entity tag or `*`. */
export function writeCondition(request: HttpRequest, allowNoneMatch: boolean): WriteCondition {
  const condition: WriteCondition = {};
  const ifMatch = request.headers.get('if-match')?.trim();
  if (ifMatch) {
    const tag = ifMatch === '*' ? '*' : ENTITY_TAG.exec(ifMatch)?.[1];
    if (tag === undefined) {
      throw new BrokerError(
        'invalid_request',
        'Header "If-Match": must be one entity tag as the ETag header gave it (in quotes), or *.',
      );
    }
    condition.ifMatch = tag;
  }
  const ifNoneMatch = request.headers.get('if-none-match')?.trim();
  if (ifNoneMatch) {
    if (!allowNoneMatch || ifNoneMatch !== '*') {
      throw new BrokerError(
        'invalid_request',
        'Header "If-None-Match": only "*" is understood, on PUT (create only when it does not exist).',
      );
    }
    condition.ifNoneMatch = '*';
  }
  return condition;
}

/** `skipToken`: the last id of the previous page, base64url, so the link does not invite editing. */
export function skipTokenOf(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

const skipToken = z
  .string()
  .max(128)
  .transform((value, ctx) => {
    const id = Buffer.from(value, 'base64url').toString('utf8');
    if (!CONNECTION_ID.test(id) || skipTokenOf(id) !== value) {
      ctx.addIssue({ code: 'custom', message: 'is not a skipToken this API gave out' });
      return z.NEVER;
    }
    return id;
  })
  .optional();

const top = z
  .string()
  .regex(/^\d{1,6}$/, `must be a whole number from 1 to ${MAX_TOP}`)
  .transform(Number)
  .refine((n) => n >= 1 && n <= MAX_TOP, `must be from 1 to ${MAX_TOP}`)
  .optional();

const connectionsQuery = z.object({
  source: z.enum(['declared', 'managed'], { error: 'must be declared or managed' }).optional(),
  template: z.string().regex(CONNECTION_ID, 'must be a template name').optional(),
  top,
  skipToken,
  code: z.string().optional(),
});

const templatesQuery = z.object({ top, skipToken, code: z.string().optional() });

export interface PageQuery {
  source?: DefinitionSource;
  template?: string;
  top: number;
  after?: string;
}

export function connectionsPageQuery(request: HttpRequest): PageQuery {
  const q = parseQuery(request.query, connectionsQuery);
  return { source: q.source, template: q.template, top: q.top ?? DEFAULT_TOP, after: q.skipToken };
}

export function templatesPageQuery(request: HttpRequest): PageQuery {
  const q = parseQuery(request.query, templatesQuery);
  return { top: q.top ?? DEFAULT_TOP, after: q.skipToken };
}

/** The next page's URL, with the same filters, or null on the last page. */
export function nextLink(
  publicUrl: string,
  path: string,
  query: PageQuery,
  next: string | undefined,
): string | null {
  if (next === undefined) return null;
  const params = new URLSearchParams();
  if (query.source) params.set('source', query.source);
  if (query.template) params.set('template', query.template);
  params.set('top', String(query.top));
  params.set('skipToken', skipTokenOf(next));
  return `${publicUrl}/api/${path}?${params}`;
}

/** A JSON answer that is never cached (admin data changes under the client). */
export function jsonAnswer(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return { status, headers: { 'Cache-Control': 'no-store', ...headers }, jsonBody: body };
}

import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';
import { BrokerError } from '../errors.js';

/** Validates a request's query with zod; the first problem becomes a 400 `invalid_request` naming the parameter. */
export function parseQuery<T extends z.ZodType>(request: HttpRequest, schema: T): z.output<T> {
  const raw: Record<string, string> = {};
  for (const [k, v] of request.query.entries()) if (!(k in raw)) raw[k] = v;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = issue.path.join('.') || 'query';
  throw new BrokerError('invalid_request', `Query parameter "${name}": ${issue.message}.`);
}

/** Cookie header as a map (RFC 6265 §5.4), first value wins. */
export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

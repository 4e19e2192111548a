import type { z } from 'zod';
import { BrokerError } from '../errors.js';

/** Validates a query with zod; the first problem becomes a 400 `invalid_request` naming the parameter. */
export function parseQuery<T extends z.ZodType>(query: URLSearchParams, schema: T): z.output<T> {
  const raw: Record<string, string> = {};
  for (const [k, v] of query.entries()) if (!(k in raw)) raw[k] = v;
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

/** True when the client prefers HTML over JSON (a browser), as `Accept` negotiation would decide. */
export function prefersHtml(accept: string | null): boolean {
  if (!accept) return false;
  const weight = (type: string) => {
    let best = -1;
    for (const part of accept.split(',')) {
      const [media, ...params] = part
        .trim()
        .split(';')
        .map((s) => s.trim());
      if (media !== type) continue;
      const q = params.find((p) => p.startsWith('q='));
      best = Math.max(best, q ? Number(q.slice(2)) || 0 : 1);
    }
    return best;
  };
  const html = weight('text/html');
  const json = Math.max(weight('application/json'), weight('application/problem+json'));
  return html > 0 && html > json;
}

/**
 * JSON only when the client names it and does not prefer HTML: routes a person's browser opens
 * (the callback, device-code pages) answer pages to `*\/*` and to browsers' usual `Accept`.
 */
export function wantsJson(accept: string | null): boolean {
  return !prefersHtml(accept) && /application\/(problem\+)?json/.test(accept ?? '');
}

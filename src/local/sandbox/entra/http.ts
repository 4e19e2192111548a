/**
 * The simulator's HTTP plumbing. Endpoints build an `Answer` instead of writing to the response, so
 * one place sends it (and a test fake can look at it or replace it before it goes out).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

/** A complete HTTP answer, not yet sent. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Larger than any real OAuth request. */
const MAX_BODY = 64 * 1024;

/** Entra sends these on every token answer, errors included. */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export const answer = (status: number, headers: Record<string, string> = {}, body = ''): Answer => ({
  status,
  headers,
  body,
});

export function jsonAnswer(status: number, body: object, headers: Record<string, string> = {}): Answer {
  const type = { 'Content-Type': 'application/json; charset=utf-8' };
  return answer(status, { ...type, ...NO_STORE, ...headers }, JSON.stringify(body));
}

/** Appends the parameters to the redirect URI's own query, as Entra does (`null` values are left out). */
export function redirectAnswer(redirectUri: string, params: Record<string, string | null>): Answer {
  const target = new URL(redirectUri);
  for (const [name, value] of Object.entries(params))
    if (value !== null) target.searchParams.set(name, value);
  return answer(302, { Location: target.toString(), ...NO_STORE });
}

export function send(res: ServerResponse, { status, headers, body }: Answer): void {
  res.writeHead(status, headers);
  res.end(body);
}

/** The body as text, or undefined when larger than any real OAuth request. */
export async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export const isForm = (req: IncomingMessage) =>
  (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function parseBasicAuth(header: string | undefined): { id: string; secret: string } | undefined {
  const encoded = /^Basic\s+(\S+)$/i.exec(header ?? '')?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}

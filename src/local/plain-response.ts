import type { HttpResponseInit } from '@azure/functions';

/** A handler's answer as the host writes it: the status, the headers in order, the body's bytes. */
export interface PlainResponse {
  status: number;
  /** Lowercase names, sorted, as `Headers` iterates them. */
  headers: [string, string][];
  body: Buffer;
}

/** RFC 9110 token characters: what `Headers` accepts as a name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A value `Headers` keeps as it is (no surrounding whitespace to trim) and node:http accepts. */
const HEADER_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;
/** Statuses a `Response` carries no body with; `HttpResponse` then drops `jsonBody`. */
const NULL_BODY = new Set([204, 205, 304]);
const byName = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * What `new HttpResponse(init)` and its `arrayBuffer()` yield, for the results handlers return: JSON,
 * text or no body, headers as a plain object of strings, no cookies. The class builds an undici
 * `Response` and a web stream per call, which cost the embedded host as much as the rest of a cached
 * token answer. Anything outside that shape returns undefined and goes through `HttpResponse`, so
 * every answer is the same as through the class (test/unit/plain-response.property.test.ts compares them).
 */
export function plainResponse(init: HttpResponseInit): PlainResponse | undefined {
  const status = init.status ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 599 || NULL_BODY.has(status)) return undefined;
  if (init.cookies !== undefined && init.cookies.length > 0) return undefined;

  const headers: [string, string][] = [];
  const given = init.headers;
  if (given !== undefined) {
    if (typeof given !== 'object' || given === null) return undefined;
    const proto = Object.getPrototypeOf(given);
    if (proto !== Object.prototype && proto !== null) return undefined;
    for (const [name, value] of Object.entries(given)) {
      if (typeof value !== 'string' || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) return undefined;
      headers.push([name.toLowerCase(), value]);
    }
  }

  let text: string | undefined;
  let contentType: string | undefined;
  if (init.jsonBody !== undefined && init.jsonBody !== null) {
    const json: unknown = JSON.stringify(init.jsonBody);
    if (typeof json !== 'string') return undefined;
    text = json;
    contentType = 'application/json';
  } else if (typeof init.body === 'string') {
    text = init.body;
    contentType = 'text/plain;charset=UTF-8';
  } else if (init.body !== undefined && init.body !== null) {
    return undefined;
  }

  headers.sort(byName);
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]![0];
    // `Headers` would join the values of one name given twice; and cookies have their own path.
    if (name === 'set-cookie' || (i > 0 && headers[i - 1]![0] === name)) return undefined;
  }
  if (contentType !== undefined && !headers.some(([name]) => name === 'content-type')) {
    headers.push(['content-type', contentType]);
    headers.sort(byName);
  }
  return { status, headers, body: text === undefined ? Buffer.alloc(0) : Buffer.from(text, 'utf8') };
}

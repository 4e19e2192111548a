/**
 * The embedded local host: serves the route table with node:http so `npm start` runs the broker
 * without Azure Functions Core Tools. It mimics what Azure's host does around a handler (the
 * `/api` prefix, method filtering, function keys, `HttpRequest`/`InvocationContext` objects,
 * cookie serialisation), so a handler cannot tell which host it runs in.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { format } from 'node:util';
import type { Cookie, HttpResponseInit, LogHandler } from '@azure/functions';
import type { HttpRoute } from '../functions/route-types.js';
import { matcherOf } from '../lib/crypto/tokens.js';
import { BrokerError, type ErrorCode } from '../lib/errors.js';
import { problemResponse } from '../lib/http/problem.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { HttpRequest, HttpResponse, InvocationContext } from './azure-functions.js';
import { hostMatcher } from './host-names.js';
import { plainResponse } from './plain-response.js';

export type HostLogger = Pick<Logger, 'info' | 'warn' | 'error'> & Partial<Pick<Logger, 'debug'>>;

export interface LocalHostOptions {
  routes: HttpRoute[];
  /** Required on `authLevel: 'function'` routes, as `x-functions-key` or `?code=`. */
  functionKey: string;
  /** 0 picks a free port. */
  port: number;
  /** Defaults to loopback: the local host is for one machine, not a network. */
  host?: string;
  /**
   * Host names answered besides `localhost` and loopback addresses (the host of `BROKER_PUBLIC_URL`);
   * any other `Host` gets 421 on every path, so a web page cannot reach the host by DNS rebinding.
   */
  hostNames?: string[];
  logger?: HostLogger;
  /** Serves paths no route matches (e.g. a sandbox simulator); returns true when it handled the request. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Larger request bodies are refused with 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long `close()` lets in-flight requests finish before cutting their connections. Default 2 s. */
  closeGraceMs?: number;
}

export interface LocalHost {
  /** Base URL without `/api`, e.g. `http://127.0.0.1:7071`. */
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_CLOSE_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);

/** Headers that describe our connection to the client, not the handler's response. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade']);

export async function startLocalHost(options: LocalHostOptions): Promise<LocalHost> {
  if (!options.functionKey) throw new Error('startLocalHost: functionKey must not be empty');
  const logger: HostLogger = options.logger ?? createLogger();
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  const bindHost = options.host ?? '127.0.0.1';
  const routes = indexRoutes(options.routes);
  const isFunctionKey = matcherOf(options.functionKey);
  const isOwnHost = hostMatcher(options.hostNames);
  let baseUrl = '';
  let closing = false;

  const server = http.createServer((req, res) => {
    if (closing) res.setHeader('Connection', 'close');
    // A request finishing while we close would otherwise keep its keep-alive socket until the grace ends.
    res.on('finish', () => {
      // The socket only counts as idle once the response is fully handed off, a tick later.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res).catch((err: unknown) => {
      logger.error('local_host.request_failed', errorFields(err));
      if (!res.headersSent) writeProblem(res, 'internal_error', 'The local host failed to answer.');
      else res.destroy();
    });
  });
  // A request Node's parser refuses (headers over its limit, a malformed request line) never reaches
  // `handle`; Node would answer it with an empty 400/431. Answer a problem+json instead
  // (docs/design.md, "Hostile input"), as one connection-closing response.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const answer = problemResponse(
      new BrokerError(
        'invalid_request',
        tooLarge ? 'The request headers are too large.' : 'The request is malformed.',
      ),
      '',
    );
    // The status is the error code's (one table, src/lib/errors.ts): 400 invalid_request, not Node's 431.
    const headers = Object.entries({ ...answer.headers, Connection: 'close' })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(
      `HTTP/1.1 ${answer.status} Bad Request\r\n${headers}Content-Length: ${Buffer.byteLength(answer.body)}\r\n\r\n${answer.body}`,
    );
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    if (!isOwnHost(req.headers.host) || !absoluteFormIsOwn(req.url ?? '/')) {
      writeProblem(
        res,
        'misdirected_request',
        'This host answers only to its own names: localhost, loopback addresses and the host of BROKER_PUBLIC_URL.',
      );
      return;
    }
    const target = parseTarget(req.url ?? '/');
    const matched = target ? routes.match(target) : undefined;
    const route = matched?.route;
    if (!target || !matched || !route) {
      if (options.fallback?.(req, res)) return;
      writeProblem(res, 'not_found', 'No function is served at this path.');
      return;
    }

    const method = (req.method ?? 'GET').toUpperCase();
    if (!route.methods.some((m) => m === method)) {
      writeProblem(res, 'method_not_allowed', `Use ${route.methods.join(', ')} on this route.`, {
        Allow: route.methods.join(', '),
      });
      return;
    }

    if (route.authLevel === 'function' && !keyMatches(req, target.search)) {
      writeProblem(
        res,
        'unauthorized',
        'This route needs the function key, as the x-functions-key header or the code query parameter.',
      );
      return;
    }

    const declaredLength = Number(req.headers['content-length'] ?? 0);
    // Without Content-Length and Transfer-Encoding a request has no body (RFC 9112, 6.3): nothing to wait for.
    const noBody =
      req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    const body = noBody
      ? EMPTY
      : declaredLength > maxBodyBytes
        ? undefined
        : await readBody(req, maxBodyBytes);
    if (body === undefined) {
      // The rest of the body is not read, so the connection cannot be reused.
      res.setHeader('Connection', 'close');
      writeProblem(res, 'payload_too_large', `The request body is larger than ${maxBodyBytes} bytes.`);
      return;
    }
    if (body === null) return; // the client went away mid-body

    const invocationId = randomUUID();
    const request = new HttpRequest({
      method,
      url: `${baseUrl}${target.path}${target.search}`,
      headers: requestHeaders(req),
      params: matched.params,
      ...(body.length > 0 && method !== 'GET' && method !== 'HEAD' ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({
      invocationId,
      functionName: route.name,
      logHandler: invocationLogHandler(logger, route.name, invocationId),
    });

    let result: HttpResponseInit | HttpResponse;
    try {
      result = await route.handler(request, context);
    } catch (err) {
      logger.error('local_host.handler_failed', { function: route.name, invocationId, ...errorFields(err) });
      if (closing) res.setHeader('Connection', 'close');
      writeProblem(res, 'internal_error', 'The function failed; the host log has the details.');
      return;
    }
    // close() may have begun while the handler ran; the client should not reuse this connection.
    if (closing) res.setHeader('Connection', 'close');

    let status: number;
    try {
      status = await writeResult(res, result, method === 'HEAD');
    } catch (err) {
      logger.error('local_host.response_invalid', {
        function: route.name,
        invocationId,
        ...errorFields(err),
      });
      if (res.headersSent) res.destroy();
      else writeProblem(res, 'internal_error', 'The function returned a response the host cannot send.');
      return;
    }
    logger.info('local_host.request', {
      function: route.name,
      invocationId,
      method,
      status,
      durationMs: Date.now() - started,
    });
  }

  /** A request in absolute form (`GET http://host/api/token`) names its host there too (RFC 9112 §3.2.2). */
  function absoluteFormIsOwn(rawUrl: string): boolean {
    if (rawUrl.startsWith('/')) return true;
    try {
      return isOwnHost(new URL(rawUrl).host);
    } catch {
      return true; // not a URL: parseTarget answers it 404
    }
  }

  function keyMatches(req: IncomingMessage, search: string): boolean {
    // Azure reads the header first and only falls back to `?code=` when there is none.
    const header = req.headers['x-functions-key'];
    const given =
      typeof header === 'string' && header !== '' ? header : new URLSearchParams(search).get('code');
    if (!given) return false;
    return isFunctionKey(given);
  }

  // The first HttpRequest of a process loads Node's fetch classes (~50 ms): paid here, before the
  // host says it is ready, not by its first caller.
  void new HttpRequest({ method: 'GET', url: 'http://127.0.0.1/' });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options.port, bindHost, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error('local_host.server_error', errorFields(err)));

  const { port } = server.address() as AddressInfo;
  baseUrl = `http://${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${port}`;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve, reject) => {
      closing = true;
      const grace = setTimeout(() => server.closeAllConnections(), closeGraceMs);
      grace.unref();
      server.close((err) => {
        clearTimeout(grace);
        if (err) reject(err);
        else resolve();
      });
      // Idle keep-alive sockets would otherwise hold close() open until the client drops them.
      server.closeIdleConnections();
    });
    return closed;
  };

  return { url: baseUrl, port, server, close };
}

interface RouteIndex {
  match(target: Target): { route: HttpRoute; params: Record<string, string> } | undefined;
}

/**
 * Literal routes by key, and routes with `{param}` segments (`connections/{id}`) matched segment by
 * segment as Azure's host does: a parameter is one non-empty segment, literals win over parameters.
 */
function indexRoutes(routes: HttpRoute[]): RouteIndex {
  const byKey = new Map<string, HttpRoute>();
  const templated: { segments: string[]; route: HttpRoute }[] = [];
  for (const route of routes) {
    const key = normalizeRoute(route.route);
    if (key === '') throw new Error(`startLocalHost: route of "${route.name}" is empty`);
    if (byKey.has(key) || templated.some((t) => t.segments.join('/') === key))
      throw new Error(`startLocalHost: route "${route.route}" is defined twice`);
    if (key.includes('{')) templated.push({ segments: key.split('/'), route });
    else byKey.set(key, route);
  }
  return {
    match(target) {
      const literal = byKey.get(target.routeKey);
      if (literal) return { route: literal, params: {} };
      const parts = target.routePath.split('/');
      for (const { segments, route } of templated) {
        if (segments.length !== parts.length) continue;
        const params: Record<string, string> = {};
        const fits = segments.every((segment, i) => {
          const part = parts[i]!;
          const param = /^\{(\w+)\}$/.exec(segment)?.[1];
          if (param === undefined) return segment === part.toLowerCase();
          params[param] = part;
          return part.length > 0;
        });
        if (fits) return { route, params };
      }
      return undefined;
    },
  };
}

/** ASP.NET routing, which Azure's host uses, matches case-insensitively. */
function normalizeRoute(route: string): string {
  return route.replace(/^\/+|\/+$/g, '').toLowerCase();
}

interface Target {
  /** Path as sent (still percent-encoded), starting with `/`. */
  path: string;
  /** `?…` or empty. */
  search: string;
  /** The part below `/api`, decoded and normalised. */
  routeKey: string;
  /** The same, decoded but as sent (route parameters keep their case). */
  routePath: string;
}

/** Undefined for paths outside `/api`, which only the fallback may serve. */
function parseTarget(rawUrl: string): Target | undefined {
  let raw = rawUrl;
  if (!raw.startsWith('/')) {
    // Absolute-form (`GET http://host/api/token`), as proxies send it.
    try {
      const u = new URL(raw);
      raw = `${u.pathname}${u.search}`;
    } catch {
      return undefined;
    }
  }
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const search = q === -1 ? '' : raw.slice(q);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  const match = /^\/api(?:\/(.*))?$/i.exec(decoded);
  if (!match) return undefined;
  const below = (match[1] ?? '').replace(/^\/+|\/+$/g, '');
  return { path, search, routeKey: below.toLowerCase(), routePath: below };
}

/**
 * Resolves to the body, `undefined` when it exceeds the limit (reading stops there), or `null`
 * when the client aborted.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (value: Buffer | undefined | null) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle(undefined);
      } else {
        chunks.push(chunk);
      }
    };
    req.on('data', onData);
    req.on('end', () => settle(Buffer.concat(chunks)));
    req.on('aborted', () => settle(null));
    req.on('error', () => settle(null));
    req.on('close', () => {
      if (!req.complete) settle(null);
    });
  });
}

function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Writes a handler's result the way Azure's host would; returns the status sent. */
async function writeResult(
  res: ServerResponse,
  result: HttpResponseInit | HttpResponse | undefined | null,
  isHead: boolean,
): Promise<number> {
  if (result === undefined || result === null) {
    res.writeHead(204).end();
    return 204;
  }
  if (typeof result !== 'object')
    throw new TypeError('the handler returned neither HttpResponseInit nor HttpResponse');
  const plain = result instanceof HttpResponse ? undefined : plainResponse(result);
  let status: number;
  let headers: Iterable<[string, string]>;
  let setCookies: string[] = [];
  let body: Buffer;
  if (plain) {
    ({ status, headers, body } = plain);
  } else {
    // Going through HttpResponse gives jsonBody, body types and default headers the same treatment as in Azure.
    const response = result instanceof HttpResponse ? result : new HttpResponse(result);
    setCookies = [...response.headers.getSetCookie(), ...response.cookies.map(serializeCookie)];
    body = Buffer.from(await response.arrayBuffer());
    status = response.status;
    headers = response.headers;
  }

  for (const [name, value] of headers) {
    if (name === 'set-cookie' || HOP_BY_HOP.has(name)) continue;
    res.setHeader(name, value);
  }
  if (setCookies.length > 0) res.setHeader('Set-Cookie', setCookies);
  const bodyless = status === 204 || status === 304 || (status >= 100 && status < 200);
  if (!bodyless) res.setHeader('Content-Length', body.length);
  res.writeHead(status);
  res.end(bodyless || isHead ? undefined : body);
  return status;
}

/** RFC 6265 `Set-Cookie`, the attributes Azure's host emits for a `Cookie`. */
export function serializeCookie(cookie: Cookie): string {
  // A `;`, `,` or control character would smuggle attributes or split the header.
  const unsafe = /[;,\s\x00-\x1f\x7f]/;
  if (!cookie.name || unsafe.test(cookie.name) || cookie.name.includes('=')) {
    throw new TypeError('cookie name is empty or has characters a cookie name cannot hold');
  }
  if (unsafe.test(cookie.value)) throw new TypeError(`cookie "${cookie.name}" has an invalid value`);
  const parts = [`${cookie.name}=${cookie.value}`];
  const attribute = (label: string, value: string | undefined) => {
    if (value === undefined || value === '') return;
    if (/[;\x00-\x1f\x7f]/.test(value))
      throw new TypeError(`cookie "${cookie.name}" has an invalid ${label}`);
    parts.push(`${label}=${value}`);
  };
  attribute('Domain', cookie.domain);
  attribute('Path', cookie.path);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${Math.trunc(cookie.maxAge)}`);
  if (cookie.expires !== undefined) {
    const expires = cookie.expires instanceof Date ? cookie.expires : new Date(cookie.expires);
    if (Number.isNaN(expires.getTime())) throw new TypeError(`cookie "${cookie.name}" has an invalid expiry`);
    parts.push(`Expires=${expires.toUTCString()}`);
  }
  if (cookie.secure) parts.push('Secure');
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.sameSite) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}

/** The host's own refusals, through the same problem mapping as the handlers' errors. */
function writeProblem(
  res: ServerResponse,
  code: ErrorCode,
  detail: string,
  headers: Record<string, string> = {},
): void {
  const answer = problemResponse(new BrokerError(code, detail), '', undefined, headers);
  res.writeHead(answer.status, { ...answer.headers, 'Content-Length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}

/** Name and message only: a stack or a cause could carry request data into the log. */
export function errorFields(err: unknown): { error: string; message: string } {
  if (err instanceof Error) return { error: err.name, message: err.message };
  return { error: typeof err, message: 'a non-Error value was thrown' };
}

/** Routes `context.log`/`warn`/`error` of a handler into the host's structured log. */
export function invocationLogHandler(
  logger: HostLogger,
  functionName: string,
  invocationId: string,
): LogHandler {
  return (level, ...args) => {
    if (level === 'none') return;
    const fields = { function: functionName, invocationId, message: format(...args) };
    if (level === 'error' || level === 'critical') logger.error('function.log', fields);
    else if (level === 'warning') logger.warn('function.log', fields);
    else if (level === 'information') logger.info('function.log', fields);
    else logger.debug?.('function.log', fields);
  };
}

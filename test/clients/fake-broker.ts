/**
 * A scripted stand-in for the broker's `GET /api/token`, for what the real broker will not answer on
 * demand: garbage, HTML, a truncated body, silence, 503 with and without `Retry-After`. Real HTTP on
 * 127.0.0.1; every request is recorded (path, query, headers).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
}

export type FakeHandler = (req: RecordedRequest, res: ServerResponse, n: number) => void;

export interface FakeBroker {
  url: string;
  requests: RecordedRequest[];
  /** What the next requests get (default: a token valid for an hour). */
  handle(handler: FakeHandler): void;
  close(): Promise<void>;
}

let serial = 0;
/** A fresh token string per answer, so tests can look for it in error messages. */
export const newToken = () => `tok-${++serial}-${Math.random().toString(36).slice(2)}`;

export function tokenBody(options: { lifetimeSec?: number; scope?: string; xoauth2?: string } = {}) {
  const lifetime = options.lifetimeSec ?? 3600;
  return {
    access_token: newToken(),
    token_type: 'Bearer',
    expires_in: lifetime,
    expires_on: Math.floor(Date.now() / 1000) + lifetime,
    scope: options.scope ?? 'https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read',
    ...(options.xoauth2 ? { xoauth2: options.xoauth2 } : {}),
  };
}

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': status === 200 ? 'application/json' : 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
};

export async function startFakeBroker(): Promise<FakeBroker> {
  const requests: RecordedRequest[] = [];
  let handler: FakeHandler = (_req, res) => sendJson(res, 200, tokenBody());
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const recorded = { query: url.searchParams, headers: req.headers };
    requests.push(recorded);
    handler(recorded, res, requests.length);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    handle(h) {
      handler = h;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The Graph SDK sends its bearer token only to https hosts that are Graph's or listed in
 * `customHosts`. So the simulator's Graph-like `/graph/v1.0/*` gets an https front on `localhost`
 * (the test CA of test/fakes/tls.ts), and the SDK's last middleware sends requests with node:https
 * trusting that CA (Node's global fetch cannot be given a CA without a process-wide setting); every
 * other middleware, the authentication handler included, is the SDK's own.
 */
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { testTls } from '../fakes/tls.js';

export interface GraphFront {
  /** `https://localhost:{port}/`: what the Graph client takes as `baseUrl`. */
  baseUrl: string;
  /** Authorization headers seen (for the test to see a token arrived). */
  seenBearer: number;
  close(): Promise<void>;
}

/** `https://localhost:{port}/v1.0/me` → `{simUrl}/graph/v1.0/me`. */
export async function startGraphFront(simUrl: string): Promise<GraphFront> {
  const tls = testTls();
  const front = {
    baseUrl: '',
    seenBearer: 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer({ key: tls.key, cert: tls.cert }, async (req, res) => {
    const authorization = req.headers.authorization;
    if (authorization?.startsWith('Bearer ')) front.seenBearer++;
    const upstream = await fetch(`${simUrl}/graph${req.url}`, {
      method: req.method,
      headers: authorization ? { authorization } : {},
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, {
      'content-type': upstream.headers.get('content-type') ?? 'application/json',
      ...(upstream.headers.get('www-authenticate')
        ? { 'www-authenticate': upstream.headers.get('www-authenticate')! }
        : {}),
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  front.baseUrl = `https://localhost:${(server.address() as AddressInfo).port}/`;
  return front;
}

/** The Graph SDK's transport (the end of its middleware chain) over node:https with the test CA. */
export class HttpsTransport implements Middleware {
  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const headers = new Headers(context.options?.headers as ConstructorParameters<typeof Headers>[0]);
    const target = new URL(url);
    const { status, head, body } = await new Promise<{ status: number; head: Headers; body: Buffer }>(
      (resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            servername: target.hostname,
            port: target.port,
            path: `${target.pathname}${target.search}`,
            method: context.options?.method ?? 'GET',
            headers: Object.fromEntries(headers),
            ca: testTls().ca,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const head = new Headers();
              for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') head.set(k, v);
              resolve({ status: res.statusCode ?? 0, head, body: Buffer.concat(chunks) });
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    context.response = new Response(body, { status, headers: head });
  }
}

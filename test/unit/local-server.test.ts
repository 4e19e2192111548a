import http from 'node:http';
import { connect } from 'node:net';
import { HttpResponse } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpRoute } from '../../src/functions/route-types.js';
import { type LocalHost, serializeCookie, startLocalHost } from '../../src/local/server.js';
import { memoryLogger } from '../support/logs.js';

const KEY = 'test-function-key-0123456789';

const routes: HttpRoute[] = [
  {
    name: 'token',
    route: 'token',
    methods: ['GET'],
    authLevel: 'function',
    handler: async (request) => ({
      jsonBody: { ok: true, connection: request.query.get('connection') },
      headers: { 'Cache-Control': 'no-store' },
    }),
  },
  {
    name: 'startPoll',
    route: 'start/poll',
    methods: ['GET'],
    authLevel: 'function',
    handler: async () => ({ jsonBody: { status: 'pending' } }),
  },
  {
    name: 'echo',
    route: 'echo',
    methods: ['POST', 'PUT'],
    authLevel: 'anonymous',
    handler: async (request, context) => {
      context.log('echo called');
      return {
        status: 201,
        jsonBody: {
          method: request.method,
          url: request.url,
          x: request.query.getAll('x'),
          header: request.headers.get('x-test'),
          body: await request.text(),
          functionName: context.functionName,
          invocationId: context.invocationId,
        },
      };
    },
  },
  {
    name: 'cookies',
    route: 'cookies',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => ({
      status: 302,
      headers: { Location: '/api/elsewhere', 'Set-Cookie': 'fromHeader=1; Path=/' },
      cookies: [
        {
          name: 'broker_state',
          value: 'sealed.value-123',
          path: '/api/callback',
          httpOnly: true,
          secure: true,
          sameSite: 'Lax',
          maxAge: 600,
        },
        { name: 'gone', value: '', path: '/', expires: Date.UTC(2020, 0, 1), domain: 'localhost' },
      ],
    }),
  },
  {
    name: 'raw',
    route: 'raw',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => ({
      status: 207,
      headers: new Headers({ 'Content-Type': 'application/octet-stream', 'X-Custom': 'yes' }),
      body: new Uint8Array([1, 2, 3, 250]),
    }),
  },
  {
    name: 'text',
    route: 'text',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => ({ body: 'plain words' }),
  },
  {
    name: 'html',
    route: 'html',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => ({ body: '<p>hi</p>', headers: { 'content-type': 'text/html; charset=utf-8' } }),
  },
  {
    name: 'response',
    route: 'response',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () =>
      new HttpResponse({
        status: 202,
        jsonBody: { accepted: true },
        headers: { 'content-type': 'application/vnd.test+json' },
        cookies: [{ name: 'a', value: 'b' }],
      }),
  },
  {
    name: 'empty',
    route: 'empty',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => ({ status: 204 }),
  },
  {
    name: 'boom',
    route: 'boom',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => {
      throw new RangeError('refresh token rt-abc leaked into a message');
    },
  },
];

let host: LocalHost;
let base: string;
const log = memoryLogger();

beforeAll(async () => {
  host = await startLocalHost({
    routes,
    functionKey: KEY,
    port: 0,
    logger: log.logger,
    maxBodyBytes: 4096,
    fallback: (req, res) => {
      if (!req.url?.startsWith('/sandbox/')) return false;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('sandbox here');
      return true;
    },
  });
  base = host.url;
});

afterAll(async () => {
  await host.close();
});

async function problem(res: Response) {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return (await res.json()) as { type: string; title: string; status: number; code: string; detail: string };
}

describe('startLocalHost', () => {
  it('listens on loopback and reports its URL and port', () => {
    expect(host.port).toBeGreaterThan(0);
    expect(host.url).toBe(`http://127.0.0.1:${host.port}`);
    expect(host.server.address()).toMatchObject({ address: '127.0.0.1' });
  });

  describe('routing', () => {
    it('serves a route under /api with the key in the x-functions-key header', async () => {
      const res = await fetch(`${base}/api/token?connection=mail`, { headers: { 'x-functions-key': KEY } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toEqual({ ok: true, connection: 'mail' });
    });

    it('accepts the key as ?code=, a trailing slash, nested routes and any letter case', async () => {
      expect((await fetch(`${base}/api/token/?code=${KEY}`)).status).toBe(200);
      expect((await fetch(`${base}/API/Token?code=${KEY}`)).status).toBe(200);
      const poll = await fetch(`${base}/api/start/poll?code=${KEY}`);
      expect(await poll.json()).toEqual({ status: 'pending' });
    });

    it('answers unknown paths with 404 not_found problem+json', async () => {
      for (const path of ['/api/nope', '/api', '/', '/token', '/api/start', '/api/token/extra']) {
        const res = await fetch(`${base}${path}?code=${KEY}`);
        expect(res.status, path).toBe(404);
        const body = await problem(res);
        expect(body).toMatchObject({ status: 404, code: 'not_found', title: 'Not found' });
        expect(body.type).toBeTypeOf('string');
        expect(body.detail).toBeTypeOf('string');
      }
    });

    it('answers a wrong method with 405 method_not_allowed and Allow', async () => {
      const res = await fetch(`${base}/api/token`, { method: 'POST', headers: { 'x-functions-key': KEY } });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET');
      expect(await problem(res)).toMatchObject({ status: 405, code: 'method_not_allowed' });
      const echo = await fetch(`${base}/api/echo`);
      expect(echo.headers.get('allow')).toBe('POST, PUT');
    });

    it('hands other paths to the fallback before answering 404', async () => {
      const res = await fetch(`${base}/sandbox/authorize`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('sandbox here');
    });
  });

  describe('host names (DNS rebinding)', () => {
    /** Raw HTTP/1.1, so the request line and `Host` are exactly as written. */
    const raw = (head: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(host.port, '127.0.0.1', () =>
          socket.end(`${head}\r\nConnection: close\r\n\r\n`),
        );
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });

    it('answers 421 misdirected_request to a foreign Host, also in absolute form, before the key check and the fallback', async () => {
      for (const head of [
        `GET /api/token?code=${KEY} HTTP/1.1\r\nHost: evil.example`,
        'GET /sandbox/authorize HTTP/1.1\r\nHost: evil.example:80',
        `GET http://evil.example/api/token?code=${KEY} HTTP/1.1\r\nHost: 127.0.0.1`,
        `GET /api/token?code=${KEY} HTTP/1.1\r\nHost: localhost@evil.example`,
        `GET /api/token?code=${KEY} HTTP/1.0`,
      ]) {
        const answer = await raw(head);
        expect(answer, head).toMatch(/^HTTP\/1\.1 421 /);
        expect(answer).toContain('"code":"misdirected_request"');
      }
    });

    it('serves localhost, loopback addresses in any spelling, and the configured names', async () => {
      for (const name of [
        'localhost',
        '127.0.0.1',
        '127.1',
        '[::1]',
        '[0:0:0:0:0:0:0:1]',
        '[::ffff:127.0.0.1]',
      ]) {
        expect(await raw(`GET /api/token?code=${KEY} HTTP/1.1\r\nHost: ${name}:7071`), name).toMatch(
          /^HTTP\/1\.1 200 /,
        );
      }
      const named = await startLocalHost({
        routes,
        functionKey: KEY,
        port: 0,
        hostNames: ['broker.contoso.test'],
      });
      try {
        const ok = await new Promise<number>((resolve, reject) =>
          http
            .get(
              `${named.url}/api/token?code=${KEY}`,
              { headers: { host: 'Broker.Contoso.Test' } },
              (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
              },
            )
            .on('error', reject),
        );
        expect(ok).toBe(200);
      } finally {
        await named.close();
      }
    });
  });

  describe('function keys', () => {
    it.each([
      ['no key', {}, ''],
      ['a wrong header', { 'x-functions-key': 'wrong-key' }, ''],
      ['a wrong code', {}, '?code=wrong-key'],
      ['a key of another length', { 'x-functions-key': `${KEY}x` }, ''],
      ['a wrong header even with the right code', { 'x-functions-key': 'wrong-key' }, `?code=${KEY}`],
    ])('refuses %s with 401 unauthorized', async (_label, headers: Record<string, string>, query) => {
      const res = await fetch(`${base}/api/token${query}`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('FunctionKey');
      const text = await res.clone().text();
      expect(text).not.toContain('wrong-key');
      expect(text).not.toContain(KEY);
      expect(await problem(res)).toMatchObject({ status: 401, code: 'unauthorized' });
    });

    it('lets anonymous routes through without a key', async () => {
      const res = await fetch(`${base}/api/text`);
      expect(res.status).toBe(200);
    });
  });

  describe('requests', () => {
    it('gives the handler a real HttpRequest and InvocationContext', async () => {
      const res = await fetch(`${base}/api/echo?x=1&x=2`, {
        method: 'POST',
        headers: { 'x-test': 'hello', 'content-type': 'text/plain' },
        body: 'the body',
      });
      expect(res.status).toBe(201);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        method: 'POST',
        url: `${base}/api/echo?x=1&x=2`,
        x: ['1', '2'],
        header: 'hello',
        body: 'the body',
        functionName: 'echo',
      });
      expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);
      expect(log.lines).toContainEqual({
        level: 'info',
        event: 'function.log',
        fields: { function: 'echo', invocationId: body.invocationId, message: 'echo called' },
      });
    });

    it('refuses a body over maxBodyBytes with 413', async () => {
      const res = await fetch(`${base}/api/echo`, { method: 'POST', body: 'x'.repeat(5000) });
      expect(res.status).toBe(413);
      expect(await problem(res)).toMatchObject({ status: 413, code: 'payload_too_large' });
      const ok = await fetch(`${base}/api/echo`, { method: 'PUT', body: 'x'.repeat(4096) });
      expect(ok.status).toBe(201);
    });

    it('refuses a chunked body once it passes maxBodyBytes', async () => {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${base}/api/echo`, { method: 'POST', agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.write('y'.repeat(3000));
        req.write('y'.repeat(3000));
        req.end();
      });
      expect(status).toBe(413);
      expect(JSON.parse(body)).toMatchObject({ code: 'payload_too_large' });
    });
  });

  describe('responses', () => {
    it('writes every cookie as its own Set-Cookie header, with its attributes', async () => {
      const res = await fetch(`${base}/api/cookies`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/api/elsewhere');
      expect(res.headers.getSetCookie()).toEqual([
        'fromHeader=1; Path=/',
        'broker_state=sealed.value-123; Path=/api/callback; Max-Age=600; Secure; HttpOnly; SameSite=Lax',
        'gone=; Domain=localhost; Path=/; Expires=Wed, 01 Jan 2020 00:00:00 GMT',
      ]);
    });

    it('writes status, a Headers object and a binary body as given', async () => {
      const res = await fetch(`${base}/api/raw`);
      expect(res.status).toBe(207);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(res.headers.get('x-custom')).toBe('yes');
      expect(res.headers.get('content-length')).toBe('4');
      expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([1, 2, 3, 250]);
    });

    it('defaults to 200, and gives string bodies the fetch default content type', async () => {
      const res = await fetch(`${base}/api/text`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain;charset=UTF-8');
      expect(await res.text()).toBe('plain words');
      const html = await fetch(`${base}/api/html`);
      expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    });

    it('accepts an HttpResponse and keeps a content type the handler chose for jsonBody', async () => {
      const res = await fetch(`${base}/api/response`);
      expect(res.status).toBe(202);
      expect(res.headers.get('content-type')).toBe('application/vnd.test+json');
      expect(res.headers.getSetCookie()).toEqual(['a=b']);
      expect(await res.json()).toEqual({ accepted: true });
    });

    it('sends 204 without a body', async () => {
      const res = await fetch(`${base}/api/empty`);
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    });

    it('turns a throwing handler into 500 internal_error without the error in the body', async () => {
      const res = await fetch(`${base}/api/boom`);
      expect(res.status).toBe(500);
      const text = await res.clone().text();
      expect(text).not.toContain('leaked');
      expect(text).not.toContain('RangeError');
      expect(await problem(res)).toMatchObject({ status: 500, code: 'internal_error' });
      expect(log.lines).toContainEqual({
        level: 'error',
        event: 'local_host.handler_failed',
        fields: expect.objectContaining({
          function: 'boom',
          error: 'RangeError',
          message: 'refresh token rt-abc leaked into a message',
        }),
      });
      const logged = JSON.stringify(log.lines.filter((l) => l.event === 'local_host.handler_failed'));
      expect(logged).not.toContain('at ');
    });
  });
});

describe('serializeCookie', () => {
  it('refuses names and values that would break the header', () => {
    expect(() => serializeCookie({ name: 'a;b', value: 'x' })).toThrow();
    expect(() => serializeCookie({ name: 'a', value: 'x; Domain=evil' })).toThrow();
    expect(() => serializeCookie({ name: 'a', value: 'x', path: '/\r\nX: y' })).toThrow();
    expect(serializeCookie({ name: 'a', value: 'x', sameSite: 'None', secure: true })).toBe(
      'a=x; Secure; SameSite=None',
    );
  });
});

describe('close()', () => {
  it('does not wait for idle keep-alive connections', async () => {
    const local = await startLocalHost({
      routes,
      functionKey: KEY,
      port: 0,
      logger: memoryLogger().logger,
      closeGraceMs: 15_000,
    });
    const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(`${local.url}/api/text`, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
      expect(status).toBe(200);
      await new Promise((resolve) => setImmediate(resolve));
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);

      // A global-fetch client keeps its socket too.
      expect((await fetch(`${local.url}/api/text`)).status).toBe(200);

      const started = Date.now();
      await local.close();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(local.server.listening).toBe(false);
      await expect(local.close()).resolves.toBeUndefined();
    } finally {
      agent.destroy();
    }
  });

  it('lets an in-flight request finish, then closes its connection', async () => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const local = await startLocalHost({
      routes: [
        {
          name: 'slow',
          route: 'slow',
          methods: ['GET'],
          authLevel: 'anonymous',
          handler: async () => {
            entered();
            await new Promise<void>((resolve) => {
              release = resolve;
            });
            return { body: 'done' };
          },
        },
      ],
      functionKey: KEY,
      port: 0,
      logger: memoryLogger().logger,
      closeGraceMs: 15_000,
    });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const response = new Promise<{ status: number; body: string; connection?: string }>(
        (resolve, reject) => {
          http
            .get(`${local.url}/api/slow`, { agent }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => {
                body += c;
              });
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }),
              );
            })
            .on('error', reject);
        },
      );
      await inside;
      const started = Date.now();
      const closing = local.close();
      release();
      expect(await response).toEqual({ status: 200, body: 'done', connection: 'close' });
      await closing;
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      agent.destroy();
    }
  });
});

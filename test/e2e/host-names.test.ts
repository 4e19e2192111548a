import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTable } from '../../src/functions/routes.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { FUNCTION_KEY, type Stack, startStack } from './harness.js';

/** A raw request: fetch would not let the test choose the `Host` header. */
function request(
  base: string,
  path: string,
  host: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers: { ...headers, host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every route of the one route table, with a query that would otherwise get past validation. */
const ROUTES = routeTable(() => Promise.reject(new Error('unused')), loadSettings({})).http;

describe('the embedded host answers only its own names (DNS rebinding)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {} },
      env: { BROKER_PUBLIC_URL: 'https://broker.contoso.test' },
    });
  });
  afterAll(() => stack.close());

  it('answers Host: evil.example with 421 misdirected_request on every route and method of the route table', async () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(4);
    const paths = ROUTES.map((r) => `/api/${r.route}?connection=support&code=${FUNCTION_KEY}`);
    for (const route of ROUTES) {
      for (const method of route.methods) {
        const path = `/api/${route.route}?connection=support&code=${FUNCTION_KEY}`;
        const res = await request(stack.url, path, 'evil.example', method, {
          'x-functions-key': FUNCTION_KEY,
        });
        expect(res.status, `${method} ${route.route}`).toBe(421);
        expect(res.type).toContain('application/problem+json');
        expect(JSON.parse(res.body)).toMatchObject({ status: 421, code: 'misdirected_request' });
        expect(res.body).not.toContain('evil.example');
      }
    }
    // Paths no route serves, and the sandbox's, are refused the same way, before anything else.
    for (const path of [...paths, '/api/nope', '/', '/sandbox/oauth2/v2.0/authorize']) {
      expect((await request(stack.url, path, 'evil.example:80')).status, path).toBe(421);
    }
  });

  it.each([
    'evil.example',
    'localhost.evil.example',
    '127.0.0.1.nip.io',
    'broker.contoso.test.evil.example',
    'user@127.0.0.1',
  ])('refuses Host %j', async (host) => {
    expect((await request(stack.url, '/api/token?connection=support', host)).status).toBe(421);
  });

  it.each(['127.0.0.1', 'localhost', 'LOCALHOST:7071', '[::1]:7071', '127.0.0.2', 'broker.contoso.test'])(
    'serves Host %j',
    async (host) => {
      const res = await request(stack.url, '/api/token?connection=support', host, 'GET', {
        'x-functions-key': FUNCTION_KEY,
      });
      // Past the host check: the route answers (never connected: 409 consent_required).
      expect(res.status).toBe(409);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'consent_required' });
    },
  );
});

describe('trusting the principal header by hand', () => {
  it('says so in a warning line at start-up (WEBSITE_AUTH_ENABLED=True on the embedded host)', async () => {
    const env = { ADMIN_AUTH: 'easyauth', BROKER_TENANT_ID: '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13' };
    const trusting = await startStack({ env: { ...env, WEBSITE_AUTH_ENABLED: 'True' } });
    const plain = await startStack({ env });
    try {
      const warning = trusting.logs.filter((l) => l.includes('local_host.trusts_principal_header'));
      expect(warning).toHaveLength(1);
      expect(JSON.parse(warning[0]!)).toMatchObject({ level: 'warn' });
      expect(warning[0]).toContain('X-MS-CLIENT-PRINCIPAL');
      expect(plain.logs.join('\n')).not.toContain('trusts_principal_header');
    } finally {
      await trusting.close();
      await plain.close();
    }
  });
});

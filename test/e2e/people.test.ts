import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import { ADA, clientPrincipal } from '../support/easy-auth.js';
import { type Stack, startStack } from './harness.js';

const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
const OTHER_TENANT = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';

interface Problem {
  code: string;
}

const easyAuth = (platform: boolean) => ({
  ADMIN_AUTH: 'easyauth',
  BROKER_TENANT_ID: TENANT,
  ...(platform ? { WEBSITE_AUTH_ENABLED: 'True' } : {}),
});

describe('people sign in (ADMIN_AUTH=easyauth behind App Service authentication)', () => {
  let stack: Stack;
  const get = (path: string, headers: Record<string, string> = {}) => stack.api(path, { key: null, headers });

  beforeAll(async () => {
    stack = await startStack({ connections: { support: {} }, env: easyAuth(true) });
  });
  afterAll(() => stack.close());

  it('a person with the admin role reads the status; its links carry no key', async () => {
    const json = await get('/api/status', {
      'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']),
    });
    expect(json.status).toBe(200);
    const page = await get('/api/status?code=some-key-in-the-url', {
      'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']),
      accept: 'text/html',
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/api/start?connection=support');
    expect(html).not.toContain('code=');
  });

  it('nobody signed in: a browser goes to sign in and comes back, a script hears 401', async () => {
    const browser = await get('/api/status?x=1', { accept: 'text/html' });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe(
      `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent('/api/status?x=1')}`,
    );
    const script = await get('/api/status');
    expect(script.status).toBe(401);
    expect(((await script.json()) as Problem).code).toBe('unauthorized');
  });

  it('signed in without the role: 403 forbidden', async () => {
    const res = await get('/api/status', { 'x-ms-client-principal': clientPrincipal(TENANT, ['Reader']) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as Problem).code).toBe('forbidden');
  });

  it('a principal of another tenant, or naming none, is 403 forbidden even with the role', async () => {
    for (const tenant of [OTHER_TENANT, null]) {
      const res = await get('/api/status', {
        'x-ms-client-principal': clientPrincipal(tenant, ['Broker.Admin'], 'mallory@fabrikam.com'),
      });
      expect(res.status, String(tenant)).toBe(403);
      const problem = (await res.json()) as Problem & { detail: string };
      expect(problem.code).toBe('forbidden');
      expect(problem.detail).toContain("not in the broker's tenant");
    }
    // The tenant id compares without regard to case, as Entra's GUIDs may arrive upper-cased.
    const upper = await get('/api/status', {
      'x-ms-client-principal': clientPrincipal(TENANT.toUpperCase(), ['Broker.Admin']),
    });
    expect(upper.status).toBe(200);
  });

  it('a malformed principal header counts as nobody (never a 5xx)', async () => {
    for (const bad of [
      '%%%not-base64',
      Buffer.from('{"claims": 5').toString('base64'),
      'e30=',
      'A'.repeat(9000),
    ]) {
      const res = await get('/api/status', { 'x-ms-client-principal': bad });
      expect(res.status, bad.slice(0, 20)).toBe(401);
    }
  });

  it('the function key alone opens nothing in this mode', async () => {
    const res = await stack.api('/api/status');
    expect(res.status).toBe(401);
  });

  it('consent begun by a signed-in person: the callback stays anonymous, the log names the person', async () => {
    const res = await consent(stack.url, '', 'support', {
      account: 'support@contoso.com',
      startHeaders: { 'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']) },
    });
    expect(res.status).toBe(200);
    const stored = stack.logs.filter((l) => l.includes('"event":"consent.stored"')).map((l) => JSON.parse(l));
    expect(stored.at(-1)).toMatchObject({ connection: 'support', by: 'ada@contoso.com', byId: ADA });
  });

  it('/api/token still takes the function key (CALLER_AUTH=key)', async () => {
    expect((await stack.api('/api/token?connection=support')).status).toBe(200);
  });
});

describe("without the platform (WEBSITE_AUTH_ENABLED unset) the header is anyone's: ignored", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ connections: { support: {} }, env: easyAuth(false) });
  });
  afterAll(() => stack.close());

  it('a forged principal with the admin role is refused', async () => {
    const res = await stack.api('/api/status', {
      key: null,
      headers: { 'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']) },
    });
    expect(res.status).toBe(401);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appToken as clientToken } from '../support/app-token.js';
import { ADA, clientPrincipal } from '../support/easy-auth.js';
import { CLIENT_ID, CLIENT_SECRET_NAME, findLeaks, type Stack, startStack } from './harness.js';

/**
 * Who may use the admin routes (docs/connections.md) under ADMIN_AUTH=easyauth with
 * CALLER_AUTH=entra: people signed in by App Service with the admin role, and services whose app
 * token (validated as callers' are) carries the app role `Broker.Admin`; `by` names them.
 */
const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
const API_ID = '0f6c2a9e-3d41-4b8a-a7e5-5c9d1e2b4f60';
const PORTAL = {
  clientId: 'a1b2c3d4-0000-4000-8000-00000000000a',
  oid: 'aaaaaaaa-1111-4111-8111-111111111111',
};
const ENGINE = {
  clientId: 'a1b2c3d4-0000-4000-8000-00000000000b',
  oid: 'bbbbbbbb-2222-4222-8222-222222222222',
};
const SECRET = 'admin-gate-app-secret';

describe('admin gate (ADMIN_AUTH=easyauth, CALLER_AUTH=entra)', () => {
  let stack: Stack;
  const appToken = (clientId: string) =>
    clientToken(stack.simUrl, { tenant: TENANT, clientId, secret: SECRET, resource: API_ID });
  const template = () => ({
    provider: 'entra',
    authority: stack.simUrl,
    clientId: CLIENT_ID,
    credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
    scopes: ['openid'],
  });
  const put = (path: string, body: unknown, headers: Record<string, string>) =>
    stack.api(path, {
      key: null,
      method: 'PUT',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
    });

  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {} },
      env: (simUrl) => ({
        ADMIN_AUTH: 'easyauth',
        WEBSITE_AUTH_ENABLED: 'True',
        CALLER_AUTH: 'entra',
        BROKER_TENANT_ID: TENANT,
        BROKER_API_CLIENT_ID: API_ID,
        BROKER_AUTHORITY: simUrl,
      }),
    });
    stack.sim.registerApi({ appId: API_ID, identifierUri: 'api://broker', accessTokenVersion: 2 });
    for (const [app, roles] of [
      [PORTAL, ['Broker.Admin']],
      [ENGINE, ['Token.Request']],
    ] as const) {
      stack.sim.registerClient({
        clientId: app.clientId,
        secret: SECRET,
        redirectUris: [],
        servicePrincipalId: app.oid,
        appRoles: { [API_ID]: [...roles] },
      });
    }
  });
  afterAll(() => stack.close());

  it('a service whose app token carries Broker.Admin writes, and is named in the entry and the log', async () => {
    const res = await put('/api/templates/mail', template(), {
      authorization: `Bearer ${await appToken(PORTAL.clientId)}`,
    });
    expect(res.status).toBe(201);
    const entry = (await res.json()) as { createdBy: { name: string; id?: string } };
    expect(entry.createdBy.id).toBe(PORTAL.oid);
    const created = await put(
      '/api/connections/desk1',
      { template: 'mail' },
      { authorization: `Bearer ${await appToken(PORTAL.clientId)}` },
    );
    expect(created.status).toBe(201);
    const line = stack.logs.find((l) => l.includes('"connection.created"'))!;
    expect(JSON.parse(line)).toMatchObject({
      connection: 'desk1',
      source: 'managed',
      template: 'mail',
      by: { id: PORTAL.oid },
    });
    expect(await findLeaks(stack, [SECRET])).toEqual([]);
  });

  it('a service without the admin role: 403 forbidden; a bad token: 401 with a Bearer challenge', async () => {
    const res = await stack.api('/api/connections', {
      key: null,
      headers: { authorization: `Bearer ${await appToken(ENGINE.clientId)}` },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('forbidden');
    const bad = await stack.api('/api/connections', {
      key: null,
      headers: { authorization: 'Bearer not.a.token' },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a person with the role passes, one without gets 403, nobody gets 401 (a browser: sign in)', async () => {
    const ok = await stack.api('/api/connections/desk1', {
      key: null,
      headers: { 'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']) },
    });
    expect(ok.status).toBe(200);
    const del = await stack.api('/api/connections/desk1', {
      key: null,
      method: 'DELETE',
      headers: { 'x-ms-client-principal': clientPrincipal(TENANT, ['Broker.Admin']) },
    });
    expect(del.status).toBe(204);
    expect(JSON.parse(stack.logs.find((l) => l.includes('"connection.deleted"'))!)).toMatchObject({
      by: { name: 'ada@contoso.com', id: ADA },
    });
    const noRole = await stack.api('/api/templates', {
      key: null,
      headers: { 'x-ms-client-principal': clientPrincipal(TENANT, ['Reader']) },
    });
    expect(noRole.status).toBe(403);
    expect((await stack.api('/api/templates', { key: null })).status).toBe(401);
    const browser = await stack.api('/api/templates', { key: null, headers: { accept: 'text/html' } });
    expect(browser.status).toBe(302);
  });

  it('the function key alone is not an admin here (the routes are anonymous at the host)', async () => {
    expect((await stack.api('/api/connections')).status).toBe(401);
  });
});

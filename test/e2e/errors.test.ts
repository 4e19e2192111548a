import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import type { StatusBody } from '../support/http-types.js';
import { CLIENT_ID, findLeaks, type Stack, startStack } from './harness.js';

/** Each error code of DESIGN.md, produced by a real upstream condition of the simulator. */
describe('upstream conditions become the documented error codes', () => {
  let stack: Stack;
  const token = (id = 'support', extra = '') => stack.api(`/api/token?connection=${id}${extra}`);
  const refreshes = () => stack.sim.stats.byGrant.refresh_token ?? 0;
  const connect = async (id: string, account = `${id}@contoso.com`) =>
    expect((await consent(stack.url, stack.local.functionKey, id, { account })).status).toBe(200);

  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {}, mfa: {}, idle: {} },
      overrides: { providerTimeoutMs: 500 },
    });
    for (const id of ['support', 'mfa', 'idle']) await connect(id);
  });
  beforeEach(() => {
    for (const id of ['support', 'mfa', 'idle']) stack.local.broker.tokens.invalidate(id);
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  it('429 with a long Retry-After → 503 upstream_unavailable with the provider Retry-After, at once', async () => {
    stack.sim.failNext('token', {
      status: 429,
      headers: { 'Retry-After': '120' },
      body: '{"error":"temporarily_unavailable"}',
    });
    const started = Date.now();
    const res = await token();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('120');
    expect(await res.json()).toMatchObject({ code: 'upstream_unavailable', status: 503 });
  });

  it('429 with a short Retry-After is retried and succeeds', async () => {
    stack.sim.failNext('token', { status: 429, headers: { 'Retry-After': '1' }, body: '' });
    const res = await token();
    expect(res.status).toBe(200);
  });

  it('5xx three times → 503 upstream_unavailable with Retry-After', async () => {
    stack.sim.failNext('token', { status: 503, body: 'Service Unavailable' }, 3);
    const res = await token();
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await res.json()).toMatchObject({ code: 'upstream_unavailable' });
  });

  it('an HTML error page with status 200 → 503, the page is not quoted', async () => {
    const page = '<html><body>Proxy error: upstream said no</body></html>';
    stack.sim.failNext('token', { status: 200, headers: { 'Content-Type': 'text/html' }, body: page });
    const res = await token();
    expect(res.status).toBe(503);
    expect(await res.text()).not.toContain('Proxy error');
  });

  it('a provider that hangs → 503 after the timeout, and the refresh token is not sent twice', async () => {
    const before = refreshes();
    stack.sim.hangNext('token', 2000);
    const res = await token();
    expect(res.status).toBe(503);
    expect(refreshes() - before).toBe(1);
    // The provider may have redeemed it; the grant still works next time (Entra tolerates reuse).
    await new Promise((r) => setTimeout(r, 1600));
  });

  it('a scope the grant cannot give → 400 invalid_request with the provider error, grant untouched', async () => {
    const res = await token(
      'support',
      `&scope=${encodeURIComponent('https://a.example.com/x https://b.example.com/y')}`,
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 'invalid_request',
      providerError: { error: 'invalid_scope' },
    });
    expect((await stack.local.broker.store.getSecret('rt-support'))!.tags.status).toBe('connected');
  });

  it('an expired client secret → 502 client_misconfigured; the grant stays connected with lastError', async () => {
    stack.sim.setClientSecretExpired(CLIENT_ID, true);
    try {
      const res = await token();
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({
        code: 'client_misconfigured',
        providerError: { error: 'invalid_client', aadsts: 7000222 },
      });
      const status = (await (await stack.api('/api/status')).json()) as StatusBody;
      expect(status.connections.find((c) => c.id === 'support')).toMatchObject({
        status: 'connected',
        lastError: 'invalid_client AADSTS7000222',
      });
    } finally {
      stack.sim.setClientSecretExpired(CLIENT_ID, false);
    }
    expect((await token()).status).toBe(200);
    expect((await stack.local.broker.store.getSecret('rt-support'))!.tags.lastError).toBeUndefined();
  });

  it('MFA required → 409 consent_required and the connection needs consent', async () => {
    stack.sim.requireMfa('mfa@contoso.com');
    const res = await token('mfa');
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      code: 'consent_required',
      consentUrl: `${stack.url}/api/start?connection=mfa`,
      providerError: { error: 'interaction_required', aadsts: 50076 },
    });
  });

  it('90 days of inactivity → 409, then 409 at once without calling the provider, until a new consent', async () => {
    stack.sim.expireInactive('idle@contoso.com');
    const first = await token('idle');
    expect(first.status).toBe(409);
    expect(await first.json()).toMatchObject({ providerError: { aadsts: 700082 } });
    const status = (await (await stack.api('/api/status')).json()) as StatusBody;
    expect(status.connections.find((c) => c.id === 'idle')).toMatchObject({
      status: 'needs_consent',
      lastError: 'invalid_grant AADSTS700082',
    });
    const before = stack.sim.stats.tokenRequests;
    expect((await token('idle')).status).toBe(409);
    expect(stack.sim.stats.tokenRequests).toBe(before);

    await connect('idle');
    expect((await token('idle')).status).toBe(200);
    expect((await stack.local.broker.store.getSecret('rt-idle'))!.tags.status).toBe('connected');
  });

  it('a revoked grant found by the rotation pass → needs_consent; fresh ones are skipped', async () => {
    stack.sim.revokeGrants('support@contoso.com');
    stack.clock.advance(25 * 3600 * 1000);
    const results = await stack.local.broker.rotation.rotationPass();
    expect(results.find((r) => r.connection === 'support')).toMatchObject({
      outcome: 'needs_consent',
      error: 'invalid_grant AADSTS50173',
    });
    expect(results.find((r) => r.connection === 'idle')!.outcome).toBe('rotated');
    const again = await stack.local.broker.rotation.rotationPass();
    expect(again.find((r) => r.connection === 'idle')!.outcome).toBe('skipped');
    expect(stack.logs.some((l) => l.includes('"event":"rotation.pass"'))).toBe(true);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import type { StatusBody } from '../support/http-types.js';
import { findLeaks, type Stack, startStack } from './harness.js';

/** `/api/start` → simulator sign-in → `/api/callback`, over real HTTP, and what the store holds after. */
describe('consent (authorization code + PKCE)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      connections: {
        support: {},
        guarded: { expectedAccount: 'Support@Contoso.com' },
        unset: { credential: { type: 'secret', secretName: 'secret-nobody-set' } },
      },
    });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  it('stores the refresh token as rt-{id} with the documented tags and shows the account', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'support', {
      account: 'alice@contoso.com',
    });
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/html/);
    expect(res.body).toContain('alice@contoso.com');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    for (const token of stack.sim.issuedSecrets()) expect(res.body).not.toContain(token);

    const secret = await stack.local.broker.store.getSecret('rt-support');
    expect(stack.sim.issuedSecrets()).toContain(secret!.value);
    expect(secret!.tags).toMatchObject({ account: 'alice@contoso.com', status: 'connected' });
    expect(secret!.tags.tenant).toMatch(/^[0-9a-f-]{36}$/);
    expect(secret!.tags.scopes).toContain('Mail.Read');
    expect(Date.parse(secret!.tags.consentedAt!)).toBe(stack.clock.now());

    const status = (await (await stack.api('/api/status')).json()) as StatusBody;
    expect(status.connections.find((c) => c.id === 'support')).toMatchObject({
      id: 'support',
      provider: 'entra',
      status: 'connected',
      account: 'alice@contoso.com',
    });
  });

  it('sends PKCE S256, state, nonce and the broker-added scopes to the provider', async () => {
    const start = await stack.api('/api/start?connection=guarded');
    expect(start.status).toBe(302);
    const location = new URL(start.headers.get('location')!);
    expect(location.pathname).toBe('/organizations/oauth2/v2.0/authorize');
    const p = location.searchParams;
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get('state')!.length).toBeGreaterThanOrEqual(32);
    expect(p.get('nonce')!.length).toBeGreaterThanOrEqual(32);
    expect(p.get('login_hint')).toBe('Support@Contoso.com');
    expect(p.get('scope')!.split(' ')).toEqual(
      expect.arrayContaining(['offline_access', 'openid', 'profile']),
    );
    const cookie = start.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Max-Age=600/);
    expect(cookie).not.toContain(p.get('state')!);
  });

  it('refuses another account than expectedAccount with 403 and stores nothing', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'guarded', {
      account: 'mallory@contoso.com',
    });
    expect(res.status).toBe(403);
    expect(res.body).toContain('account_mismatch');
    expect(await stack.local.broker.store.getSecret('rt-guarded')).toBeUndefined();
    const json = await consent(stack.url, stack.local.functionKey, 'guarded', {
      account: 'mallory@contoso.com',
      accept: 'application/json',
    });
    expect(json.contentType).toBe('application/problem+json');
    expect(JSON.parse(json.body)).toMatchObject({ status: 403, code: 'account_mismatch' });
  });

  it('accepts expectedAccount case-insensitively', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'guarded', {
      account: 'support@contoso.com',
    });
    expect(res.status).toBe(200);
    expect((await stack.local.broker.store.getSecret('rt-guarded'))!.tags.account).toBe(
      'support@contoso.com',
    );
  });

  it('refuses a forged state', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'support', { tamperState: (s) => `${s}x` });
    expect(res.status).toBe(400);
    expect(res.body).toContain('consent_failed');
  });

  it('refuses a callback without the state cookie (another browser)', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'support', {
      dropCookie: true,
      accept: 'application/json',
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'consent_failed' });
  });

  it('refuses a state older than 10 minutes', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'support', {
      beforeCallback: () => stack.clock.advance(10 * 60 * 1000 + 1000),
    });
    expect(res.status).toBe(400);
    expect(res.body).toContain('consent_failed');
  });

  it('shows the provider error (error and AADSTS number) when the person cancels', async () => {
    const before = stack.sim.stats.tokenRequests;
    const res = await consent(stack.url, stack.local.functionKey, 'support', { cancel: true });
    expect(res.status).toBe(400);
    expect(res.body).toContain('access_denied');
    expect(res.body).toContain('AADSTS65004');
    expect(stack.sim.stats.tokenRequests).toBe(before);
  });

  it('answers a callback without any state as consent_failed, in JSON when asked', async () => {
    const res = await stack.api('/api/callback?code=abc', {
      key: null,
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'consent_failed', status: 400 });
  });

  it('says which command stores a client secret that is missing from the store', async () => {
    const res = await consent(stack.url, stack.local.functionKey, 'unset', { accept: 'application/json' });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({
      code: 'client_misconfigured',
      detail: expect.stringContaining('broker secrets set secret-nobody-set'),
    });
    expect(await stack.local.broker.store.getSecret('rt-unset')).toBeUndefined();
  });

  it('validates /api/start input', async () => {
    expect((await stack.api('/api/start')).status).toBe(400);
    expect(await (await stack.api('/api/start?connection=Bad!')).json()).toMatchObject({
      code: 'invalid_request',
    });
    expect(await (await stack.api('/api/start?connection=nope')).json()).toMatchObject({
      code: 'unknown_connection',
      status: 404,
    });
    expect(
      await (await stack.api('/api/start?connection=support', { key: 'wrong-key-wrong-key' })).json(),
    ).toMatchObject({
      code: 'unauthorized',
    });
  });
});

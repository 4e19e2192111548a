import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import type { TokenBody } from '../support/http-types.js';
import { findLeaks, type Stack, startStack } from './harness.js';

/** `GET /api/token` through the embedded host, against the Entra simulator, over real HTTP. */
describe('token vending', () => {
  let stack: Stack;
  const token = async (query: string) => stack.api(`/api/token?${query}`);
  const tokenJson = async (query: string) => (await token(query)).json() as Promise<TokenBody>;
  const refreshes = () => stack.sim.stats.byGrant.refresh_token ?? 0;

  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {}, uploader: {}, other: {}, spare: {}, never: {} },
    });
    for (const id of ['support', 'uploader', 'other', 'spare']) {
      const res = await consent(stack.url, stack.local.functionKey, id, { account: `${id}@contoso.com` });
      expect(res.status).toBe(200);
    }
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  it('vends a token the resource accepts, with no-store and expires_on in unix seconds', async () => {
    const res = await token('connection=support');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as TokenBody;
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBeGreaterThan(3000);
    expect(body.expires_on).toBe(Math.floor(stack.clock.now() / 1000) + body.expires_in);
    const me = await fetch(`${stack.simUrl}/graph/v1.0/me`, {
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ userPrincipalName: 'support@contoso.com' });
  });

  it('answers cache hits without calling the provider', async () => {
    await token('connection=support');
    const before = stack.sim.stats.tokenRequests;
    const first = await tokenJson('connection=support');
    for (let i = 0; i < 20; i++)
      expect((await tokenJson('connection=support')).access_token).toBe(first.access_token);
    expect(stack.sim.stats.tokenRequests).toBe(before);
  });

  it('makes exactly one refresh for 50 concurrent callers on a cold cache', async () => {
    stack.local.broker.tokens.invalidate('uploader');
    const before = refreshes();
    const bodies = await Promise.all(Array.from({ length: 50 }, () => tokenJson('connection=uploader')));
    expect(refreshes() - before).toBe(1);
    expect(new Set(bodies.map((b) => b.access_token)).size).toBe(1);
  });

  it('persists the rotated refresh token before handing out the access token', async () => {
    stack.local.broker.tokens.invalidate('other');
    const versions = (await stack.local.broker.store.listVersions('rt-other')).length;
    const body = await tokenJson('connection=other');
    const stored = await stack.local.broker.store.getSecret('rt-other');
    expect((await stack.local.broker.store.listVersions('rt-other')).length).toBe(versions + 1);
    expect(stack.sim.stats.refreshRedemptions.get(stored!.value)).toBeUndefined();
    expect(body.access_token).toBeTruthy();
    expect(stack.sim.stats.reuseDetected).toBe(0);
  });

  it('serves a token inside the refresh-ahead window while one background refresh runs', async () => {
    const first = await tokenJson('connection=spare');
    const before = refreshes();
    stack.clock.advance((first.expires_in - 4 * 60) * 1000); // 4 minutes of life left: inside PT5M
    const served = await Promise.all(Array.from({ length: 10 }, () => tokenJson('connection=spare')));
    for (const s of served) expect(s.access_token).toBe(first.access_token);
    await expect.poll(() => refreshes() - before).toBe(1);
    await expect
      .poll(async () => (await tokenJson('connection=spare')).access_token)
      .not.toBe(first.access_token);
    expect(refreshes() - before).toBe(1);
  });

  it('never hands out a token with less than 30 s of life: it waits for a refresh', async () => {
    const first = await tokenJson('connection=spare');
    const before = refreshes();
    stack.clock.advance((first.expires_in - 20) * 1000);
    const next = await tokenJson('connection=spare');
    expect(next.access_token).not.toBe(first.access_token);
    expect(next.expires_in).toBeGreaterThan(30);
    expect(refreshes() - before).toBe(1);
  });

  it('mints a token for another resource with scope= and caches it apart', async () => {
    const scope = 'https://outlook.office.com/IMAP.AccessAsUser.All';
    const imap = await tokenJson(`connection=support&scope=${encodeURIComponent(scope)}`);
    const graph = await tokenJson('connection=support');
    expect(imap.access_token).not.toBe(graph.access_token);
    expect(imap.scope).toContain('IMAP.AccessAsUser.All');
    const before = stack.sim.stats.tokenRequests;
    expect((await tokenJson(`connection=support&scope=${encodeURIComponent(scope)}`)).access_token).toBe(
      imap.access_token,
    );
    expect(stack.sim.stats.tokenRequests).toBe(before);
  });

  it('adds the SASL XOAUTH2 string with format=xoauth2', async () => {
    const body = await tokenJson(
      `connection=support&format=xoauth2&scope=${encodeURIComponent('https://outlook.office.com/IMAP.AccessAsUser.All')}`,
    );
    expect(Buffer.from(body.xoauth2!, 'base64').toString()).toBe(
      `user=support@contoso.com\x01auth=Bearer ${body.access_token}\x01\x01`,
    );
  });

  it('answers invalid_request for malformed parameters and unauthorized without a key', async () => {
    const cases: Array<[string, number, string]> = [
      ['', 400, 'invalid_request'],
      ['connection=support&format=json', 400, 'invalid_request'],
      ['connection=UPPER', 400, 'invalid_request'],
      ['connection=nope', 404, 'unknown_connection'],
    ];
    for (const [query, status, code] of cases) {
      const res = await token(query);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ status, code });
    }
    const noKey = await stack.api('/api/token?connection=support', { key: null });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ code: 'unauthorized' });
    const viaQuery = await stack.api(`/api/token?connection=support&code=${stack.local.functionKey}`, {
      key: null,
    });
    expect(viaQuery.status).toBe(200);
  });

  it('answers consent_required with consentUrl for a connection never connected', async () => {
    const before = stack.sim.stats.tokenRequests;
    const res = await token('connection=never');
    expect(res.status).toBe(409);
    const body = await res.json();
    expect(body).toMatchObject({
      code: 'consent_required',
      consentUrl: `${stack.url}/api/start?connection=never`,
    });
    expect(stack.sim.stats.tokenRequests).toBe(before);
  });

  it('keeps connections across a restart (the store is persisted)', async () => {
    await stack.restart();
    const before = refreshes();
    const body = await tokenJson('connection=support');
    expect(refreshes() - before).toBe(1);
    const me = await fetch(`${stack.simUrl}/graph/v1.0/me`, {
      headers: { authorization: `Bearer ${body.access_token}` },
    });
    expect(me.status).toBe(200);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EntraSimulator } from '../../src/local/sandbox/entra-simulator.js';
import { type EntraFake, startEntraSimulator } from '../fakes/entra.js';

const CONFIDENTIAL = 'c0ffee00-0000-4000-8000-000000000001';
const PUBLIC = 'c0ffee00-0000-4000-8000-000000000002';
const SECRET = 'app-secret-value';
const REDIRECT = 'http://localhost:7071/api/callback';
const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';

let fake: EntraFake;
let now: number;

beforeEach(async () => {
  now = T0;
  fake = await startEntraSimulator({
    clients: [
      { clientId: CONFIDENTIAL, secret: SECRET, redirectUris: [REDIRECT] },
      { clientId: PUBLIC, redirectUris: [REDIRECT] },
    ],
    now: () => now,
  });
});
afterEach(() => fake.close());

// ---- helpers ---------------------------------------------------------------------------------

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

interface AuthorizeOptions {
  clientId?: string;
  redirectUri?: string;
  scope?: string;
  challenge?: string;
  extra?: Record<string, string>;
  tenant?: string;
}

function authorizeUrl(o: AuthorizeOptions = {}): string {
  const params = new URLSearchParams({
    client_id: o.clientId ?? CONFIDENTIAL,
    response_type: 'code',
    redirect_uri: o.redirectUri ?? REDIRECT,
    scope: o.scope ?? 'openid profile offline_access User.Read',
    state: 'st-123',
    nonce: 'n-456',
    code_challenge: o.challenge ?? 'x'.repeat(43),
    code_challenge_method: 'S256',
    ...o.extra,
  });
  return `${fake.url}/${o.tenant ?? 'common'}/oauth2/v2.0/authorize?${params}`;
}

const decodeHtml = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

function hiddenFields(html: string): URLSearchParams {
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    form.append(decodeHtml(m[1]!), decodeHtml(m[2]!));
  }
  return form;
}

/** Sign-in without a browser: GET the page, POST its hidden fields with `account`, read the 302. */
async function signIn(o: AuthorizeOptions & { account?: string; cancel?: boolean } = {}): Promise<URL> {
  const pageRes = await fetch(authorizeUrl(o));
  expect(pageRes.status).toBe(200);
  const html = await pageRes.text();
  const form = hiddenFields(html);
  form.set('account', o.account ?? 'alice@contoso.com');
  // A browser submits the pressed button's name and value.
  if (o.cancel) form.set('cancel', 'Cancel');
  else form.set('signin', 'Sign in');
  const action = decodeHtml(/<form method="post" action="([^"]*)"/.exec(html)![1]!);
  const res = await fetch(new URL(action, fake.url), {
    method: 'POST',
    body: form,
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

async function postToken(form: Record<string, string>, init: { headers?: Record<string, string> } = {}) {
  const res = await fetch(`${fake.url}/common/oauth2/v2.0/token`, {
    method: 'POST',
    headers: init.headers,
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {}
  return { res, json, text };
}

/** A full consent for `account`: returns the token response of the code redemption. */
async function consent(o: AuthorizeOptions & { account?: string } = {}) {
  const { verifier, challenge } = pkce();
  const location = await signIn({ ...o, challenge });
  const clientId = o.clientId ?? CONFIDENTIAL;
  const form: Record<string, string> = {
    grant_type: 'authorization_code',
    client_id: clientId,
    code: location.searchParams.get('code')!,
    redirect_uri: o.redirectUri ?? REDIRECT,
    code_verifier: verifier,
  };
  if (clientId === CONFIDENTIAL) form.client_secret = SECRET;
  const out = await postToken(form);
  expect(out.res.status).toBe(200);
  return out.json as Record<string, string | number>;
}

const refresh = (refreshToken: string, extra: Record<string, string> = {}) =>
  postToken({
    grant_type: 'refresh_token',
    client_id: CONFIDENTIAL,
    client_secret: SECRET,
    refresh_token: refreshToken,
    ...extra,
  });

const claims = (jwt: unknown) =>
  JSON.parse(Buffer.from(String(jwt).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

function expectEntraError(
  out: { res: Response; json: Record<string, unknown> },
  status: number,
  error: string,
  code: number,
) {
  expect(out.res.status).toBe(status);
  expect(out.json.error).toBe(error);
  expect(out.json.error_codes).toEqual([code]);
  expect(String(out.json.error_description)).toMatch(new RegExp(`^AADSTS${code}: `));
}

// ---- authorize -------------------------------------------------------------------------------

describe('GET authorize', () => {
  it('shows a self-contained sign-in form carrying the request', async () => {
    const res = await fetch(authorizeUrl({ extra: { login_hint: 'bob@contoso.com' } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self' http://localhost:7071");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain('<title>Sign in to your account</title>');
    expect(html).toMatch(/<input type="email" name="account" id="account" value="bob@contoso.com"/);
    expect(html).toMatch(/<button type="submit"[^>]*id="signin"/);
    expect(html).toMatch(/<button type="submit"[^>]*id="cancel"/);
    expect(html).not.toMatch(/<script|\ssrc=|<link/i);
    // The one inline style is allowed by the CSP's nonce.
    const nonce = /<style nonce="([^"]+)">/.exec(html)?.[1];
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    const hidden = hiddenFields(html);
    expect(hidden.get('client_id')).toBe(CONFIDENTIAL);
    expect(hidden.get('state')).toBe('st-123');
    expect(hidden.get('code_challenge')).toBe('x'.repeat(43));
  });

  it('prefills the sandbox account without login_hint and escapes parameters', async () => {
    const html = await (
      await fetch(authorizeUrl({ extra: { state: '"><script>alert(1)</script>' } }))
    ).text();
    expect(html).toContain('value="sandbox.user@contoso.com"');
    expect(html).not.toContain('<script>');
    expect(hiddenFields(html).get('state')).toBe('"><script>alert(1)</script>');
  });

  it('answers an unknown client with an error page, never a redirect', async () => {
    const res = await fetch(authorizeUrl({ clientId: 'nope' }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('AADSTS700016');
  });

  it('refuses an unregistered redirect_uri with an error page', async () => {
    const res = await fetch(authorizeUrl({ redirectUri: 'https://evil.example/cb' }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('AADSTS50011');
  });

  it('answers 404 outside its endpoints', async () => {
    expect((await fetch(`${fake.url}/common/oauth2/v2.0/logout`)).status).toBe(404);
    expect((await fetch(`${fake.url}/`)).status).toBe(404);
  });

  it('refuses an unknown tenant with an error page', async () => {
    const res = await fetch(authorizeUrl({ tenant: 'not a tenant' }));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('AADSTS90002');
  });

  it.each([
    ['missing code_challenge', { code_challenge: '' }, 'invalid_request'],
    ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['empty scope', { scope: ' ' }, 'invalid_request'],
    ['malformed scope', { scope: 'User.Read bad%scope' }, 'invalid_scope'],
    ['implicit flow', { response_type: 'token' }, 'unsupported_response_type'],
  ])('redirects %s back with an error and the state', async (_name, extra, error) => {
    const res = await fetch(authorizeUrl({ extra }), { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe(error);
    expect(location.searchParams.get('error_description')).toMatch(/^AADSTS\d+: /);
    expect(location.searchParams.get('state')).toBe('st-123');
    expect(location.searchParams.has('code')).toBe(false);
  });
});

describe('POST authorize', () => {
  it('signs in: redirects with code, state and session_state', async () => {
    const location = await signIn();
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('code')).toBeTruthy();
    expect(location.searchParams.get('state')).toBe('st-123');
    expect(location.searchParams.get('session_state')).toBeTruthy();
  });

  it('cancel: redirects with access_denied AADSTS65004', async () => {
    const location = await signIn({ cancel: true });
    // `action=cancel` (a script's way of saying it) is the same.
    const form = hiddenFields(await (await fetch(authorizeUrl())).text());
    form.set('action', 'cancel');
    const res = await fetch(`${fake.url}/common/oauth2/v2.0/authorize`, {
      method: 'POST',
      body: form,
      redirect: 'manual',
    });
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error_description')).toMatch(/^AADSTS65004: User declined to consent/);
    expect(location.searchParams.get('state')).toBe('st-123');
    expect(location.searchParams.has('code')).toBe(false);
  });

  it('shows the form again with an error when the account is not an email address', async () => {
    const form = hiddenFields(await (await fetch(authorizeUrl())).text());
    form.set('account', 'not-an-email');
    const res = await fetch(`${fake.url}/common/oauth2/v2.0/authorize`, {
      method: 'POST',
      body: form,
      redirect: 'manual',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('id="error"');
  });

  it('re-validates the posted fields', async () => {
    const form = hiddenFields(await (await fetch(authorizeUrl())).text());
    form.set('redirect_uri', 'https://evil.example/cb');
    form.set('account', 'alice@contoso.com');
    const res = await fetch(`${fake.url}/common/oauth2/v2.0/authorize`, {
      method: 'POST',
      body: form,
      redirect: 'manual',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

// ---- token: authorization_code ---------------------------------------------------------------

describe('token: authorization_code', () => {
  it('answers Entra’s token response with an id_token and a Graph access token', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn({ challenge, account: 'Alice.Smith@contoso.com' })).searchParams.get('code')!;
    const { res, json } = await postToken({
      grant_type: 'authorization_code',
      client_id: CONFIDENTIAL,
      client_secret: SECRET,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    expect(json).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
    expect(Object.keys(json).sort()).toEqual(
      [
        'access_token',
        'expires_in',
        'ext_expires_in',
        'id_token',
        'refresh_token',
        'scope',
        'token_type',
      ].sort(),
    );
    expect(json.scope).toBe('User.Read profile openid email');
    const id = claims(json.id_token);
    expect(id).toMatchObject({
      aud: CONFIDENTIAL,
      iss: 'https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/v2.0',
      tid: '72f988bf-0000-4000-8000-00000000c0de',
      preferred_username: 'Alice.Smith@contoso.com',
      name: 'Alice Smith',
      nonce: 'n-456',
      iat: T0 / 1000,
      nbf: T0 / 1000,
      exp: T0 / 1000 + 3600,
    });
    expect(id.oid).toMatch(/^[0-9a-f-]{36}$/);
    expect(id.sub).toBeTruthy();
    const access = claims(json.access_token);
    expect(access).toMatchObject({
      aud: 'https://graph.microsoft.com',
      scp: 'User.Read profile openid email',
    });
    expect(access.upn).toBe('Alice.Smith@contoso.com');
    expect(access.exp).toBe(T0 / 1000 + 3599);
    expect(access.jti).toBeTruthy();
    // The same account gets the same oid on every consent.
    const again = await consent({ account: 'alice.smith@contoso.com' });
    expect(claims(again.id_token).oid).toBe(id.oid);
  });

  it('gives a refresh token only with offline_access and an id_token only with openid', async () => {
    const json = await consent({ scope: 'User.Read' });
    expect(json.refresh_token).toBeUndefined();
    expect(json.id_token).toBeUndefined();
    expect(json.access_token).toBeTruthy();
  });

  it('serves a public client without a secret', async () => {
    const json = await consent({ clientId: PUBLIC });
    expect(json.refresh_token).toBeTruthy();
  });

  it('uses the tenant in the path for tid: consumers and GUIDs', async () => {
    expect(claims((await consent({ tenant: 'consumers' })).id_token).tid).toBe(
      '9188040d-6c67-4c5b-b112-36a304b66dad',
    );
    const guid = '11111111-2222-4333-8444-555555555555';
    expect(claims((await consent({ tenant: guid })).id_token).tid).toBe(guid);
  });

  it('accepts a code once (AADSTS54005), and only within 10 minutes (AADSTS70008)', async () => {
    const { verifier, challenge } = pkce();
    const form = {
      grant_type: 'authorization_code',
      client_id: CONFIDENTIAL,
      client_secret: SECRET,
      code: (await signIn({ challenge })).searchParams.get('code')!,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    };
    expect((await postToken(form)).res.status).toBe(200);
    expectEntraError(await postToken(form), 400, 'invalid_grant', 54005);

    form.code = (await signIn({ challenge })).searchParams.get('code')!;
    now += 10 * 60_000 + 1;
    expectEntraError(await postToken(form), 400, 'invalid_grant', 70008);
  });

  it('checks PKCE (AADSTS501481), the redirect_uri (AADSTS50011) and the code itself', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn({ challenge })).searchParams.get('code')!;
    const base = { grant_type: 'authorization_code', client_id: CONFIDENTIAL, client_secret: SECRET, code };
    expectEntraError(
      await postToken({ ...base, redirect_uri: REDIRECT, code_verifier: pkce().verifier }),
      400,
      'invalid_grant',
      501481,
    );
    expectEntraError(
      await postToken({ ...base, redirect_uri: `${REDIRECT}/x`, code_verifier: verifier }),
      400,
      'invalid_grant',
      50011,
    );
    expectEntraError(
      await postToken({ ...base, code: 'forged', redirect_uri: REDIRECT, code_verifier: verifier }),
      400,
      'invalid_grant',
      9002313,
    );
    // Refused attempts did not burn the code.
    expect((await postToken({ ...base, redirect_uri: REDIRECT, code_verifier: verifier })).res.status).toBe(
      200,
    );
  });
});

// ---- token: client authentication and request shape ------------------------------------------

describe('token: client and request errors', () => {
  const form = { grant_type: 'refresh_token', refresh_token: 'whatever' };

  it('answers Entra’s error body, echoing client-request-id as correlation id', async () => {
    const out = await postToken(
      { ...form, client_id: CONFIDENTIAL, client_secret: 'wrong' },
      { headers: { 'client-request-id': 'corr-1' } },
    );
    expectEntraError(out, 401, 'invalid_client', 7000215);
    expect(Object.keys(out.json).sort()).toEqual(
      [
        'correlation_id',
        'error',
        'error_codes',
        'error_description',
        'error_uri',
        'timestamp',
        'trace_id',
      ].sort(),
    );
    expect(out.json.timestamp).toBe('2026-01-01 00:00:00Z');
    expect(out.json.correlation_id).toBe('corr-1');
    expect(out.json.error_uri).toBe('https://login.microsoftonline.com/error?code=7000215');
    expect(out.json.error_description).toContain(
      `\r\nTrace ID: ${out.json.trace_id}\r\nCorrelation ID: corr-1\r\nTimestamp: 2026-01-01 00:00:00Z`,
    );
    expect(out.res.headers.get('cache-control')).toBe('no-store');
  });

  it('authenticates clients as Entra does', async () => {
    expectEntraError(await postToken({ ...form, client_id: CONFIDENTIAL }), 401, 'invalid_client', 7000218);
    expectEntraError(
      await postToken({ ...form, client_id: PUBLIC, client_secret: 'x' }),
      401,
      'invalid_client',
      700025,
    );
    expectEntraError(await postToken({ ...form, client_id: 'unknown' }), 400, 'unauthorized_client', 700016);
    // Basic auth is accepted: the request gets past the client check to the (bogus) refresh token.
    const basic = Buffer.from(`${CONFIDENTIAL}:${SECRET}`).toString('base64');
    expectEntraError(
      await postToken(form, { headers: { Authorization: `Basic ${basic}` } }),
      400,
      'invalid_grant',
      9002313,
    );
  });

  it('answers AADSTS7000222 while the client secret is expired', async () => {
    fake.sim.setClientSecretExpired(CONFIDENTIAL, true);
    const withSecret = { ...form, client_id: CONFIDENTIAL, client_secret: SECRET };
    expectEntraError(await postToken(withSecret), 401, 'invalid_client', 7000222);
    fake.sim.setClientSecretExpired(CONFIDENTIAL, false);
    expectEntraError(await postToken(withSecret), 400, 'invalid_grant', 9002313);
  });

  it('refuses bodies that are not form-encoded, GET, unknown grant types and unknown tenants', async () => {
    const url = `${fake.url}/common/oauth2/v2.0/token`;
    const json = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token' }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    const get = await fetch(url);
    expect(await get.json()).toMatchObject({ error: 'invalid_request', error_codes: [900561] });
    expectEntraError(
      await postToken({ grant_type: 'password', client_id: PUBLIC }),
      400,
      'unsupported_grant_type',
      70003,
    );
    const tenant = await fetch(`${fake.url}/no_such_tenant/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams(form),
    });
    expect(await tenant.json()).toMatchObject({ error: 'invalid_request', error_codes: [90002] });
  });
});

// ---- token: refresh_token ----------------------------------------------------------------------

describe('token: refresh_token', () => {
  it('rotates the refresh token, counts redemptions and tolerates (but records) reuse', async () => {
    const first = String((await consent()).refresh_token);
    const r1 = await refresh(first);
    expect(r1.res.status).toBe(200);
    const second = String(r1.json.refresh_token);
    expect(second).not.toBe(first);
    expect(r1.json.id_token).toBeTruthy();
    expect(fake.sim.stats.reuseDetected).toBe(0);

    const reuse = await refresh(first);
    expect(reuse.res.status).toBe(200);
    expect(fake.sim.stats.refreshRedemptions.get(first)).toBe(2);
    expect(fake.sim.stats.refreshRedemptions.get(second)).toBeUndefined();
    expect(fake.sim.stats.reuseDetected).toBe(1);
    expect(fake.sim.stats.tokenRequests).toBe(3);
    expect(fake.sim.stats.byGrant).toEqual({ authorization_code: 1, refresh_token: 2 });
  });

  it('mints a token for another resource from the same grant', async () => {
    const rt = String((await consent()).refresh_token);
    const { res, json } = await refresh(rt, { scope: `${IMAP} offline_access` });
    expect(res.status).toBe(200);
    expect(json.scope).toBe(IMAP);
    expect(claims(json.access_token)).toMatchObject({
      aud: 'https://outlook.office.com',
      scp: 'IMAP.AccessAsUser.All',
    });
    expect(json.refresh_token).toBeTruthy();
    expect(json.id_token).toBeUndefined();
  });

  it('refuses malformed scopes (AADSTS70011) and two resources at once (AADSTS28000)', async () => {
    const rt = String((await consent()).refresh_token);
    expectEntraError(await refresh(rt, { scope: 'https://outlook.office.com' }), 400, 'invalid_scope', 70011);
    expectEntraError(await refresh(rt, { scope: 'User.Read #bad' }), 400, 'invalid_scope', 70011);
    expectEntraError(await refresh(rt, { scope: `User.Read ${IMAP}` }), 400, 'invalid_scope', 28000);
    expect(fake.sim.stats.refreshRedemptions.get(rt)).toBeUndefined();
  });

  it('refuses a refresh token of another client', async () => {
    const rt = String((await consent({ clientId: PUBLIC })).refresh_token);
    expectEntraError(await refresh(rt), 400, 'invalid_grant', 70000);
  });

  it('revokeGrants: AADSTS50173 for that account only, until a new sign-in', async () => {
    const alice = String((await consent({ account: 'alice@contoso.com' })).refresh_token);
    const bob = String((await consent({ account: 'bob@contoso.com' })).refresh_token);
    fake.sim.revokeGrants('ALICE@contoso.com');
    expectEntraError(await refresh(alice), 400, 'invalid_grant', 50173);
    expect((await refresh(bob)).res.status).toBe(200);
    const fresh = String((await consent({ account: 'alice@contoso.com' })).refresh_token);
    expect((await refresh(fresh)).res.status).toBe(200);
    fake.sim.revokeGrants();
    expectEntraError(await refresh(bob), 400, 'invalid_grant', 50173);
  });

  it('expires a refresh token unused for 90 days (AADSTS700082), on demand or by the clock', async () => {
    const rt = String((await consent()).refresh_token);
    now += 89 * DAY;
    const next = String((await refresh(rt)).json.refresh_token);
    now += 90 * DAY + 1;
    const out = await refresh(next);
    expectEntraError(out, 400, 'invalid_grant', 700082);
    expect(out.json.error_description).toContain('inactive for 90.00:00:00');

    const other = String((await consent()).refresh_token);
    fake.sim.expireInactive();
    expectEntraError(await refresh(other), 400, 'invalid_grant', 700082);
  });

  it('requireMfa answers interaction_required AADSTS50076; requireConsent AADSTS65001', async () => {
    const rt = String((await consent()).refresh_token);
    fake.sim.requireMfa('alice@contoso.com');
    expectEntraError(await refresh(rt), 400, 'interaction_required', 50076);
    const rt2 = String((await consent()).refresh_token);
    fake.sim.requireConsent();
    const out = await refresh(rt2);
    expectEntraError(out, 400, 'invalid_grant', 65001);
    expect(out.json.suberror).toBe('consent_required');
  });
});

// ---- protected resource ------------------------------------------------------------------------

describe('GET /graph/v1.0/me', () => {
  const me = (token?: string) =>
    fetch(`${fake.url}/graph/v1.0/me`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });

  it('answers the signed-in user for a Graph token', async () => {
    const json = await consent({ account: 'carol@contoso.com' });
    const res = await me(String(json.access_token));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      displayName: 'Carol',
      userPrincipalName: 'carol@contoso.com',
      mail: 'carol@contoso.com',
      id: claims(json.id_token).oid,
    });
  });

  it('answers 401 InvalidAuthenticationToken for missing, forged, foreign-audience and expired tokens', async () => {
    const json = await consent();
    const token = String(json.access_token);
    const imap = String((await refresh(String(json.refresh_token), { scope: IMAP })).json.access_token);
    const [h, p] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims(token), upn: 'eve@contoso.com' })).toString('base64url')}.${token.split('.')[2]}`;
    for (const bad of [undefined, 'garbage', forged, imap, `${h}.${p}`]) {
      const res = await me(bad);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(await res.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
    }
    now += 3600 * 1000;
    expect((await me(token)).status).toBe(401);
  });
});

// ---- fault injection, counters, secrets ----------------------------------------------------------

describe('test controls', () => {
  it('failNext answers the injected response, as many times as asked, then the real one', async () => {
    const rt = String((await consent()).refresh_token);
    fake.sim.failNext('token', { status: 429, headers: { 'Retry-After': '7' }, body: '' }, 2);
    for (let i = 0; i < 2; i++) {
      const out = await refresh(rt);
      expect(out.res.status).toBe(429);
      expect(out.res.headers.get('retry-after')).toBe('7');
    }
    fake.sim.failNext('token', {
      status: 200,
      headers: { 'Content-Type': 'text/html' },
      body: '<html>Service unavailable</html>',
    });
    expect((await refresh(rt)).text).toBe('<html>Service unavailable</html>');
    expect((await refresh(rt)).res.status).toBe(200);
    // Injected failures are counted as requests but redeem nothing.
    expect(fake.sim.stats.byGrant.refresh_token).toBe(4);
    expect(fake.sim.stats.refreshRedemptions.get(rt)).toBe(1);

    fake.sim.failNext('resource', { status: 503, body: 'down' });
    expect((await fetch(`${fake.url}/graph/v1.0/me`)).status).toBe(503);
    fake.sim.failNext('authorize', { status: 500, body: 'oops' });
    expect((await fetch(authorizeUrl())).status).toBe(500);
  });

  it('hangNext delays the answer; a caller that gave up leaves nothing processed', async () => {
    const rt = String((await consent()).refresh_token);
    fake.sim.hangNext('token', 5_000);
    await expect(
      fetch(`${fake.url}/common/oauth2/v2.0/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: CONFIDENTIAL,
          client_secret: SECRET,
          refresh_token: rt,
        }),
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.sim.stats.refreshRedemptions.get(rt)).toBeUndefined();

    fake.sim.hangNext('token', 150);
    const started = Date.now();
    expect((await refresh(rt)).res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('issuedSecrets lists every code and token it issued', async () => {
    const { verifier, challenge } = pkce();
    const code = (await signIn({ challenge })).searchParams.get('code')!;
    const { json } = await postToken({
      grant_type: 'authorization_code',
      client_id: CONFIDENTIAL,
      client_secret: SECRET,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    const secrets = fake.sim.issuedSecrets();
    for (const value of [code, json.access_token, json.refresh_token, json.id_token]) {
      expect(secrets).toContain(value);
    }
  });
});

describe('mounted under a prefix', () => {
  it('handles only its own paths and posts its form under the prefix', async () => {
    const sim = new EntraSimulator({
      prefix: '/sandbox',
      clients: [{ clientId: PUBLIC, redirectUris: [REDIRECT] }],
    });
    const server = createServer((req, res) => {
      if (!sim.handle(req, res)) {
        res.writeHead(418);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect((await fetch(`${base}/api/status`)).status).toBe(418);
      expect((await fetch(`${base}/sandboxed`)).status).toBe(418);
      expect((await fetch(`${base}/sandbox/nothing-here`)).status).toBe(404);
      const url = authorizeUrl({ clientId: PUBLIC }).replace(fake.url, `${base}/sandbox`);
      const html = await (await fetch(url)).text();
      expect(html).toContain('action="/sandbox/common/oauth2/v2.0/authorize"');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

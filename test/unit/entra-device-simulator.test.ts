import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EntraFake, startEntraSimulator } from '../fakes/entra.js';

const CONFIDENTIAL = 'd0d0d0d0-0000-4000-8000-000000000001';
const PUBLIC = 'd0d0d0d0-0000-4000-8000-000000000002';
const SECRET = 'device-app-secret-value';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPE = 'User.Read Mail.Read Mail.ReadWrite Mail.Send offline_access openid profile';
const T0 = Date.UTC(2026, 0, 1);

let fake: EntraFake;
let now: number;

beforeEach(async () => {
  now = T0;
  fake = await startEntraSimulator({
    clients: [
      { clientId: CONFIDENTIAL, secret: SECRET, redirectUris: [] },
      { clientId: PUBLIC, redirectUris: [] },
    ],
    now: () => now,
  });
});
afterEach(() => fake.close());

interface DeviceAnswer {
  user_code: string;
  device_code: string;
  verification_uri: string;
  expires_in: number;
  interval: number;
  message: string;
}

async function post(path: string, form: Record<string, string>) {
  const res = await fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    // HTML pages stay in `text`.
  }
  return { status: res.status, body, text, headers: res.headers };
}

async function deviceCode(clientId = PUBLIC, tenant = 'consumers', scope = SCOPE): Promise<DeviceAnswer> {
  const res = await post(`/${tenant}/oauth2/v2.0/devicecode`, { client_id: clientId, scope });
  expect(res.status).toBe(200);
  return res.body as unknown as DeviceAnswer;
}

function poll(code: string, clientId = PUBLIC, extra: Record<string, string> = {}) {
  return post('/consumers/oauth2/v2.0/token', {
    grant_type: DEVICE_GRANT,
    client_id: clientId,
    device_code: code,
    ...extra,
  });
}

describe('Entra simulator: device authorization endpoint', () => {
  it('answers user code, device code, verification URI, expiry, interval and message as Entra does', async () => {
    const answer = await deviceCode();
    expect(answer.user_code).toMatch(/^[A-Z2-9]{9}$/);
    expect(answer.device_code.length).toBeGreaterThan(100);
    expect(answer.verification_uri).toBe(`${fake.url}/devicelogin`);
    expect(answer.expires_in).toBe(900);
    expect(answer.interval).toBe(5);
    expect(answer.message).toBe(
      `To sign in, use a web browser to open the page ${answer.verification_uri} and enter the code ${answer.user_code} to authenticate.`,
    );
    expect(answer.message).not.toContain(answer.device_code);
    expect(fake.sim.issuedSecrets()).toContain(answer.device_code);
  });

  it('honours configured lifetime and interval', async () => {
    await fake.close();
    fake = await startEntraSimulator({
      clients: [{ clientId: PUBLIC, redirectUris: [] }],
      now: () => now,
      deviceCodeLifetimeSec: 60,
      devicePollIntervalSec: 1,
    });
    const answer = await deviceCode();
    expect(answer.expires_in).toBe(60);
    expect(answer.interval).toBe(1);
  });

  it('refuses an unknown client, a missing scope and an invalid scope', async () => {
    const unknown = await post('/consumers/oauth2/v2.0/devicecode', { client_id: 'nope', scope: SCOPE });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ error: 'unauthorized_client', error_codes: [700016] });
    const noScope = await post('/consumers/oauth2/v2.0/devicecode', { client_id: PUBLIC });
    expect(noScope.body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    const badScope = await post('/consumers/oauth2/v2.0/devicecode', { client_id: PUBLIC, scope: 'a b/c d' });
    expect(badScope.body).toMatchObject({ error: 'invalid_scope', error_codes: [70011] });
  });

  it('answers GET with Entra invalid_request AADSTS900561', async () => {
    const res = await fetch(`${fake.url}/consumers/oauth2/v2.0/devicecode`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_codes: [900561] });
  });
});

describe('Entra simulator: device code grant', () => {
  it('says authorization_pending (AADSTS70016) until someone signs in, then issues tokens once', async () => {
    const { device_code, user_code } = await deviceCode();
    const pending = await poll(device_code);
    expect(pending.status).toBe(400);
    expect(pending.body).toMatchObject({ error: 'authorization_pending', error_codes: [70016] });

    fake.sim.approveDevice(user_code, 'ana@outlook.com');
    now += 5000;
    const done = await poll(device_code);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ token_type: 'Bearer' });
    expect(done.body.refresh_token).toEqual(expect.any(String));
    const claims = JSON.parse(
      Buffer.from(String(done.body.id_token).split('.')[1]!, 'base64url').toString('utf8'),
    );
    expect(claims).toMatchObject({
      preferred_username: 'ana@outlook.com',
      tid: '9188040d-6c67-4c5b-b112-36a304b66dad',
      aud: PUBLIC,
    });
    expect(String(done.body.scope).split(' ')).toEqual(
      expect.arrayContaining(['User.Read', 'Mail.Read', 'Mail.ReadWrite', 'Mail.Send']),
    );

    now += 5000;
    const again = await poll(device_code);
    expect(again.body).toMatchObject({ error: 'bad_verification_code', error_codes: [70018] });
    expect(fake.sim.stats.devicePolls).toBe(3);
    expect(fake.sim.stats.byGrant[DEVICE_GRANT]).toBe(3);
  });

  it('answers slow_down to a poll sooner than the interval, counts it, and grows the interval by 5 s', async () => {
    const { device_code } = await deviceCode();
    await poll(device_code);
    now += 4999;
    const early = await poll(device_code);
    expect(early.body).toMatchObject({ error: 'slow_down' });
    expect(fake.sim.stats.earlyPolls).toBe(1);
    now += 5000; // 5 s after the early poll, but the interval is now 10 s
    expect((await poll(device_code)).body).toMatchObject({ error: 'slow_down' });
    expect(fake.sim.stats.earlyPolls).toBe(2);
    now += 15_000; // the interval is now 15 s
    expect((await poll(device_code)).body).toMatchObject({ error: 'authorization_pending' });
    expect(fake.sim.stats.earlyPolls).toBe(2);
  });

  it('says authorization_declined after the person declines', async () => {
    const { device_code, user_code } = await deviceCode();
    fake.sim.declineDevice(user_code);
    expect((await poll(device_code)).body).toMatchObject({ error: 'authorization_declined' });
    expect(() => fake.sim.approveDevice(user_code)).toThrow(/no pending/);
  });

  it('says expired_token (AADSTS70019) once the code has expired', async () => {
    const { device_code, user_code } = await deviceCode();
    now += 900_000;
    expect((await poll(device_code)).body).toMatchObject({ error: 'expired_token', error_codes: [70019] });
    expect(() => fake.sim.approveDevice(user_code)).toThrow(/no pending/);
  });

  it('says bad_verification_code to an unknown code or another client', async () => {
    const { device_code } = await deviceCode(PUBLIC);
    expect((await poll('not-a-device-code')).body).toMatchObject({ error: 'bad_verification_code' });
    const other = await poll(device_code, CONFIDENTIAL, { client_secret: SECRET });
    expect(other.body).toMatchObject({ error: 'bad_verification_code' });
  });

  it('authenticates the client: a confidential one needs its secret, a public one must send none', async () => {
    const confidential = await deviceCode(CONFIDENTIAL);
    const noSecret = await poll(confidential.device_code, CONFIDENTIAL);
    expect(noSecret.status).toBe(401);
    expect(noSecret.body).toMatchObject({ error: 'invalid_client', error_codes: [7000218] });
    const withSecret = await poll(confidential.device_code, CONFIDENTIAL, { client_secret: SECRET });
    expect(withSecret.body).toMatchObject({ error: 'authorization_pending' });

    const pub = await deviceCode(PUBLIC);
    const secretSent = await poll(pub.device_code, PUBLIC, { client_secret: 'x' });
    expect(secretSent.body).toMatchObject({ error: 'invalid_client', error_codes: [700025] });
  });

  it('requires device_code', async () => {
    const res = await post('/consumers/oauth2/v2.0/token', { grant_type: DEVICE_GRANT, client_id: PUBLIC });
    expect(res.body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
  });

  it('lets tests inject failures at the device authorization endpoint', async () => {
    fake.sim.failNext('devicecode', { status: 503, body: 'busy' });
    const res = await post('/consumers/oauth2/v2.0/devicecode', { client_id: PUBLIC, scope: SCOPE });
    expect(res.status).toBe(503);
    await deviceCode();
  });
});

describe('Entra simulator: device login page', () => {
  it('shows a form for the code (prefilled from ?otc=) with a nonce-only CSP', async () => {
    const res = await fetch(`${fake.url}/devicelogin?otc=ABC`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<form method="post" action="/devicelogin">');
    expect(html).toContain('name="otc" id="otc" value="ABC"');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('signs in with the code typed in any case, then the device gets tokens for that account', async () => {
    const { device_code, user_code } = await deviceCode();
    const typed = `${user_code.slice(0, 4).toLowerCase()}-${user_code.slice(4)}`;
    const res = await post('/devicelogin', { otc: typed, account: 'bo@live.com', approve: 'Continue' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('bo@live.com');
    expect(res.text).not.toContain(device_code);
    const done = await poll(device_code);
    expect(done.status).toBe(200);
  });

  it('declines from the page', async () => {
    const { device_code, user_code } = await deviceCode();
    const res = await post('/devicelogin', { otc: user_code, decline: 'Decline' });
    expect(res.text).toContain('declined');
    expect((await poll(device_code)).body).toMatchObject({ error: 'authorization_declined' });
  });

  it('refuses a wrong or expired code and an invalid account, keeping the attempt pending', async () => {
    const { device_code, user_code } = await deviceCode();
    const wrong = await post('/devicelogin', {
      otc: 'WRONGCODE',
      account: 'bo@live.com',
      approve: 'Continue',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('That code didn');
    const badAccount = await post('/devicelogin', { otc: user_code, account: 'bo', approve: 'Continue' });
    expect(badAccount.status).toBe(400);
    expect((await poll(device_code)).body).toMatchObject({ error: 'authorization_pending' });
    now += 900_000;
    const late = await post('/devicelogin', { otc: user_code, account: 'bo@live.com', approve: 'Continue' });
    expect(late.status).toBe(400);
  });
});

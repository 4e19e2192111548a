import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import type { Connection } from '../../src/lib/config/connections.js';
import { createLogger } from '../../src/lib/logger.js';
import {
  DEVICE_CODE_GRANT,
  processDeviceAuthorizationResponse,
  processDevicePollResponse,
} from '../../src/lib/oauth/index.js';
import { entraDialect } from '../../src/lib/providers/entra.js';
import { classifyEntraError } from '../../src/lib/providers/entra-errors.js';
import { type EntraFake, startEntraSimulator } from '../fakes/entra.js';
import { catchError } from '../support/errors.js';

const NOW = Date.UTC(2026, 0, 1);
const JSON_HEADERS = new Headers({ 'content-type': 'application/json' });
const classify = (failure: Parameters<typeof classifyEntraError>[0]) =>
  classifyEntraError(failure, { connectionId: 'outlook' });

// As Microsoft documents the v2 /devicecode answer.
const ENTRA_ANSWER = {
  user_code: 'FRWQDE7YL',
  device_code: 'DAQABAAEAAAD--DLA3VO7QrddgJg7WevrgJ7Czy_TDsDClt2ELoEC8ePWFs-SECRET',
  verification_uri: 'https://microsoft.com/devicelogin',
  expires_in: 900,
  interval: 5,
  message:
    'To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FRWQDE7YL to authenticate.',
};

describe('parseDeviceAuthorizationResponse (RFC 8628 §3.2)', () => {
  const parse = (status: number, body: unknown) =>
    processDeviceAuthorizationResponse(
      { status, headers: JSON_HEADERS, bodyText: JSON.stringify(body) },
      NOW,
      classify,
    );

  it("reads Entra's answer", () => {
    expect(parse(200, ENTRA_ANSWER)).toEqual({
      deviceCode: ENTRA_ANSWER.device_code,
      userCode: 'FRWQDE7YL',
      verificationUri: 'https://microsoft.com/devicelogin',
      expiresIn: 900,
      interval: 5,
      message: ENTRA_ANSWER.message,
    });
  });

  it('accepts numbers as strings, verification_url, and defaults the interval to 5 s', () => {
    const { interval: _, verification_uri: uri, ...rest } = ENTRA_ANSWER;
    const parsed = parse(200, { ...rest, verification_url: uri, expires_in: '900' });
    expect(parsed).toMatchObject({ verificationUri: uri, expiresIn: 900, interval: 5 });
  });

  it('refuses a verification URI that is not http(s), and an answer that is not one', () => {
    const js = catchError(() => parse(200, { ...ENTRA_ANSWER, verification_uri: 'javascript:alert(1)' }));
    expect(js.code).toBe('upstream_unavailable');
    const html = catchError(() =>
      processDeviceAuthorizationResponse(
        { status: 200, headers: new Headers(), bodyText: '<html>echo SECRET-ECHO</html>' },
        NOW,
        classify,
      ),
    );
    expect(html.code).toBe('upstream_unavailable');
    expect(html.message).not.toContain('SECRET-ECHO');
  });

  it('classifies error answers as for any token endpoint', () => {
    const err = catchError(() =>
      parse(400, {
        error: 'unauthorized_client',
        error_codes: [700016],
        error_description: 'AADSTS700016: x',
      }),
    );
    expect(err).toMatchObject({ code: 'client_misconfigured', providerError: { aadsts: 700016 } });
  });
});

describe('parseDevicePollResponse (RFC 8628 §3.5)', () => {
  const parse = (status: number, body: unknown) =>
    processDevicePollResponse(
      { status, headers: JSON_HEADERS, bodyText: JSON.stringify(body) },
      NOW,
      classify,
    );

  it.each([
    ['authorization_pending', 70016, { status: 'pending' }],
    ['slow_down', undefined, { status: 'slow_down' }],
    ['authorization_declined', undefined, { status: 'declined' }],
    ['access_denied', undefined, { status: 'declined' }],
    ['expired_token', 70019, { status: 'expired' }],
    ['bad_verification_code', 70018, { status: 'bad_code' }],
  ])('%s → %o', (error, aadsts, expected) => {
    const body = aadsts === undefined ? { error } : { error, error_codes: [aadsts] };
    expect(parse(400, body)).toMatchObject(expected);
  });

  it('keeps what the provider said when the attempt ends', () => {
    expect(parse(400, { error: 'expired_token', error_codes: [70019] })).toEqual({
      status: 'expired',
      providerError: { error: 'expired_token', aadsts: 70019, status: 400 },
    });
  });

  it('reads a poll error sent with 200, as some providers do', () => {
    expect(parse(200, { error: 'authorization_pending' })).toEqual({ status: 'pending' });
  });

  it('returns the tokens', () => {
    const result = parse(200, {
      access_token: 'at',
      token_type: 'Bearer',
      expires_in: 3599,
      refresh_token: 'rt',
    });
    expect(result).toMatchObject({ status: 'tokens', tokens: { accessToken: 'at', refreshToken: 'rt' } });
  });

  it('classifies every other answer', () => {
    expect(catchError(() => parse(400, { error: 'invalid_grant', error_codes: [70000] })).code).toBe(
      'consent_required',
    );
    expect(catchError(() => parse(401, { error: 'invalid_client', error_codes: [7000218] })).code).toBe(
      'client_misconfigured',
    );
    expect(catchError(() => parse(503, { error: 'authorization_pending' })).code).toBe(
      'upstream_unavailable',
    );
  });
});

describe('entraDialect: device authorization against the simulator', () => {
  const PUBLIC = 'aaaaaaaa-0000-4000-8000-0000000000d1';
  const CONFIDENTIAL = 'aaaaaaaa-0000-4000-8000-0000000000d2';
  const SECRET = 'device-dialect-secret';
  let fake: EntraFake | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  async function setup(clientId: string, credential?: { type: 'secret'; secretName: string }) {
    const clock = new ManualClock(NOW);
    fake = await startEntraSimulator({
      clients: [
        { clientId: PUBLIC, redirectUris: [] },
        { clientId: CONFIDENTIAL, secret: SECRET, redirectUris: [] },
      ],
      now: () => clock.now(),
    });
    const forms: URLSearchParams[] = [];
    const recording: typeof fetch = async (input, init) => {
      forms.push(new URLSearchParams(String(init?.body ?? '')));
      return fetch(input, init);
    };
    const connection: Connection = {
      provider: 'entra',
      flow: 'device_code',
      authority: fake.url,
      tenant: 'consumers',
      clientId,
      ...(credential ? { credential } : {}),
      scopes: ['User.Read', 'Mail.Read'],
      rotateAfter: 'PT24H',
      id: 'outlook',
      redirectUri: 'https://broker.example/api/callback',
      rotateAfterMs: 86_400_000,
    };
    const logs: string[] = [];
    const dialect = entraDialect(connection, {
      fetch: recording,
      clock,
      logger: createLogger((_level, line) => logs.push(line), 'debug'),
      clientSecret: async () => (credential ? SECRET : undefined),
    });
    return { dialect, forms, clock, logs, sim: fake.sim };
  }

  it('asks /devicecode with client_id and the scopes only, then polls with the device code grant', async () => {
    const { dialect, forms, clock, logs, sim } = await setup(PUBLIC);
    const started = await dialect.startDeviceAuthorization!();
    expect(Object.fromEntries(forms[0]!)).toEqual({
      client_id: PUBLIC,
      scope: 'User.Read Mail.Read offline_access openid profile',
    });
    expect(await dialect.pollDeviceAuthorization!(started.deviceCode)).toEqual({ status: 'pending' });
    expect(Object.fromEntries(forms[1]!)).toEqual({
      grant_type: DEVICE_CODE_GRANT,
      client_id: PUBLIC,
      device_code: started.deviceCode,
    });
    sim.approveDevice(started.userCode, 'ana@outlook.com');
    clock.advance(5000);
    const done = await dialect.pollDeviceAuthorization!(started.deviceCode);
    expect(done.status).toBe('tokens');
    if (done.status !== 'tokens') return;
    expect(await dialect.accountOf(done.tokens)).toMatchObject({ account: 'ana@outlook.com' });
    for (const line of logs) expect(line).not.toContain(started.deviceCode);
  });

  it('sends the client secret when a confidential client polls, never to /devicecode', async () => {
    const { dialect, forms } = await setup(CONFIDENTIAL, { type: 'secret', secretName: 'app-secret' });
    const started = await dialect.startDeviceAuthorization!();
    expect(forms[0]!.has('client_secret')).toBe(false);
    expect(await dialect.pollDeviceAuthorization!(started.deviceCode)).toEqual({ status: 'pending' });
    expect(forms[1]!.get('client_secret')).toBe(SECRET);
  });

  it('does not repeat a poll the provider answered with 503', async () => {
    const { dialect, forms, sim } = await setup(PUBLIC);
    const started = await dialect.startDeviceAuthorization!();
    sim.failNext('token', { status: 503, body: '' }, 3);
    const err = await dialect.pollDeviceAuthorization!(started.deviceCode).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'upstream_unavailable' });
    expect(forms).toHaveLength(2);
  });
});

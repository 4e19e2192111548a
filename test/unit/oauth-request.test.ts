import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { BrokerError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import {
  authorizationUrl,
  classifyOAuthError,
  clientAuthentication,
  DEVICE_CODE_GRANT,
  deviceAuthorizationRequest,
  devicePollRequest,
  getRequest,
  mergeScopes,
  redeem,
  type TokenEndpointFailure,
  tokenRequest,
} from '../../src/lib/oauth/index.js';

// The build half is pure: requests are compared as data, no server involved.
describe('request builders', () => {
  const auth = clientAuthentication('client_secret_post', 'client', 'SECRET');

  it('marks token requests as redeeming a grant, and device authorization as repeatable', () => {
    expect(tokenRequest('https://id.example/token', { grant_type: 'refresh_token' }, { auth })).toEqual({
      method: 'POST',
      url: 'https://id.example/token',
      headers: {},
      form: { grant_type: 'refresh_token', client_id: 'client', client_secret: 'SECRET' },
      redeemsGrant: true,
      connectionId: undefined,
    });
    const device = deviceAuthorizationRequest('https://id.example/device', { scope: 'a' });
    expect(device).toMatchObject({ redeemsGrant: false, form: { scope: 'a' } });
    expect(device.once).toBeUndefined();
  });

  it('sends a device poll once, with the device code grant', () => {
    const poll = devicePollRequest('https://id.example/token', 'DEVICE-CODE', { connectionId: 'c' });
    expect(poll).toMatchObject({
      redeemsGrant: true,
      once: true,
      connectionId: 'c',
      form: { grant_type: DEVICE_CODE_GRANT, device_code: 'DEVICE-CODE' },
    });
  });

  it('puts Basic credentials in a header, never in the form (RFC 6749 §2.3.1)', () => {
    const basic = clientAuthentication('client_secret_basic', 'a b', 'p:w');
    expect(basic.form).toEqual({});
    expect(Buffer.from(basic.headers.authorization!.slice(6), 'base64').toString()).toBe('a+b:p%3Aw');
    expect(clientAuthentication('none', 'client')).toEqual({ form: { client_id: 'client' }, headers: {} });
    expect(() => clientAuthentication('client_secret_post', 'client')).toThrow(TypeError);
  });

  it('builds GETs and authorization URLs', () => {
    expect(
      getRequest('https://id.example/userinfo', { headers: { authorization: 'Bearer x' } }),
    ).toMatchObject({
      method: 'GET',
      headers: { authorization: 'Bearer x' },
      redeemsGrant: false,
    });
    const url = new URL(
      authorizationUrl('https://id.example/authorize?tenant=t', { state: 's', scope: 'a b' }),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({ tenant: 't', state: 's', scope: 'a b' });
  });

  it('merges scopes once each, case-sensitively unless told otherwise (RFC 6749 §3.3)', () => {
    expect(
      mergeScopes([
        ['a', 'B'],
        ['b', 'a'],
      ]),
    ).toEqual(['a', 'B', 'b']);
    expect(
      mergeScopes(
        [
          ['a', 'B'],
          ['b', 'a'],
        ],
        (s) => s.toLowerCase(),
      ),
    ).toEqual(['a', 'B']);
  });
});

describe('redeem: send, then process with the classifier passed in', () => {
  const deps = (answer: Response) => ({
    fetch: (async () => answer) as typeof fetch,
    clock: new ManualClock(Date.UTC(2026, 0, 1)),
    logger: createLogger(() => {}, 'error'),
  });
  const request = tokenRequest('https://id.example/token', { grant_type: 'refresh_token' });

  it('returns the token set', async () => {
    const answer = Response.json({ access_token: 'at', expires_in: '60' });
    const tokens = await redeem(deps(answer), request, classifyOAuthError);
    expect(tokens).toMatchObject({ accessToken: 'at', tokenType: 'Bearer', expiresIn: 60 });
  });

  it('hands an error answer to the dialect classifier, and only to it', async () => {
    const seen: TokenEndpointFailure[] = [];
    const classify = (failure: TokenEndpointFailure) => {
      seen.push(failure);
      return new BrokerError('client_misconfigured', 'dialect says so');
    };
    const answer = Response.json({ error: 'invalid_grant' }, { status: 400 });
    await expect(redeem(deps(answer), request, classify)).rejects.toThrow('dialect says so');
    expect(seen).toEqual([{ status: 400, oauthError: { error: 'invalid_grant' }, retryAfter: undefined }]);
  });
});

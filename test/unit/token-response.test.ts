import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EXPIRES_IN_S,
  decodeJwtClaims,
  parseOAuthError,
  parseRetryAfter,
  processTokenResponse,
} from '../../src/lib/oauth/index.js';
import { classifyEntraError } from '../../src/lib/providers/entra-errors.js';
import { catchError as thrown } from '../support/errors.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
// The recorded bodies are Entra's and ACS's; errors are classified as the Entra dialect does.
const parseTokenResponse = (status: number, headers: Headers, bodyText: string, now: number) =>
  processTokenResponse({ status, headers, bodyText }, now, classifyEntraError);
const NOW_S = NOW / 1000;
const json = new Headers({ 'content-type': 'application/json; charset=utf-8' });

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (claims: unknown) =>
  `${b64({ typ: 'JWT', alg: 'RS256', kid: 'k1' })}.${b64(claims)}.c2lnbmF0dXJl`;

// Recorded from the Microsoft identity platform (values replaced).
const ENTRA_SUCCESS = JSON.stringify({
  token_type: 'Bearer',
  scope: 'https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/User.Read',
  expires_in: 4419,
  ext_expires_in: 4419,
  access_token: 'eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFRQUJBQUFBQUFE.access',
  refresh_token: '0.AXoAAAAA-refresh-token-value',
  id_token: jwt({
    aud: '6731de76-14a6-49ae-97bc-6eba6914391e',
    iss: 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0',
    preferred_username: 'support@contoso.com',
    tid: '9188040d-6c67-4c5b-b112-36a304b66dad',
    nonce: 'n-0S6_WzA2Mj',
  }),
});

// Recorded from Azure ACS (SharePoint add-in): every number is a string.
const ACS_SUCCESS = JSON.stringify({
  token_type: 'Bearer',
  access_token: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.acs',
  expires_in: '3599',
  not_before: String(NOW_S - 300),
  expires_on: String(NOW_S + 3299),
  resource:
    '00000003-0000-0ff1-ce00-000000000000/contoso.sharepoint.com@9188040d-6c67-4c5b-b112-36a304b66dad',
  refresh_token: 'IAAAAAcs-refresh-token',
  refresh_token_expires_in: '15551999',
});

describe('parseTokenResponse (RFC 6749 §5.1)', () => {
  it('reads an Entra success body, ignoring ext_expires_in', () => {
    const tokens = parseTokenResponse(200, json, ENTRA_SUCCESS, NOW);
    expect(tokens).toEqual({
      accessToken: 'eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFRQUJBQUFBQUFE.access',
      tokenType: 'Bearer',
      expiresIn: 4419,
      scope: 'https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/User.Read',
      refreshToken: '0.AXoAAAAA-refresh-token-value',
      idToken: expect.stringMatching(/^ey/),
      refreshTokenExpiresIn: undefined,
    });
  });

  it('reads ACS numbers sent as strings', () => {
    const tokens = parseTokenResponse(200, json, ACS_SUCCESS, NOW);
    expect(tokens.expiresIn).toBe(3599);
    expect(tokens.refreshTokenExpiresIn).toBe(15551999);
    expect(tokens.refreshToken).toBe('IAAAAAcs-refresh-token');
    expect(tokens.scope).toBeUndefined();
  });

  it('accepts a response without refresh token and with extra fields', () => {
    const body = JSON.stringify({
      access_token: 'at',
      token_type: 'bearer',
      expires_in: 3600,
      foo: { nested: true },
      ext_expires_in: 7200,
    });
    expect(parseTokenResponse(200, json, body, NOW)).toEqual({
      accessToken: 'at',
      tokenType: 'Bearer',
      expiresIn: 3600,
      scope: undefined,
      refreshToken: undefined,
      idToken: undefined,
      refreshTokenExpiresIn: undefined,
    });
  });

  it('derives the lifetime from expires_on when expires_in is missing', () => {
    const asString = JSON.stringify({ access_token: 'at', expires_on: String(NOW_S + 1200) });
    expect(parseTokenResponse(200, json, asString, NOW).expiresIn).toBe(1200);
    const asNumber = JSON.stringify({ access_token: 'at', expires_on: NOW_S + 60 });
    expect(parseTokenResponse(200, json, asNumber, NOW).expiresIn).toBe(60);
    const past = JSON.stringify({ access_token: 'at', expires_on: NOW_S - 60 });
    expect(parseTokenResponse(200, json, past, NOW).expiresIn).toBe(0);
  });

  it('defaults token_type and lifetime, and treats unreadable numbers as absent', () => {
    const body = JSON.stringify({ access_token: 'at', expires_in: 'soon', refresh_token_expires_in: -5 });
    const tokens = parseTokenResponse(200, json, body, NOW);
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.expiresIn).toBe(DEFAULT_EXPIRES_IN_S);
    expect(tokens.refreshTokenExpiresIn).toBeUndefined();
  });

  it('turns an HTML 200 from a proxy into upstream_unavailable without quoting it', () => {
    const html = '<html><body>Sign in to the corporate proxy. code=SECRET-CODE-123</body></html>';
    const err = thrown(() =>
      parseTokenResponse(200, new Headers({ 'content-type': 'text/html' }), html, NOW),
    );
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toMatch(/not a token response/);
    expect(err.message).toContain('text/html');
    expect(err.message).not.toContain('SECRET-CODE-123');
    expect(err.message).not.toContain('<html>');
    expect(err.retryAfter).toBe(5);
    expect(err.providerError?.status).toBe(200);
  });

  it('turns JSON without access_token into upstream_unavailable', () => {
    const err = thrown(() => parseTokenResponse(200, json, '{"token_type":"Bearer","expires_in":3600}', NOW));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toMatch(/not a token response/);
  });

  it('refuses a refresh token that is not a string rather than dropping it', () => {
    const err = thrown(() => parseTokenResponse(200, json, '{"access_token":"at","refresh_token":42}', NOW));
    expect(err.code).toBe('upstream_unavailable');
  });

  it('classifies an error body sent with 200', () => {
    const err = thrown(() =>
      parseTokenResponse(200, json, '{"error":"invalid_grant","error_codes":[70008]}', NOW),
    );
    expect(err.code).toBe('consent_required');
    expect(err.providerError).toEqual({ error: 'invalid_grant', aadsts: 70008, status: 200 });
  });
});

describe('parseTokenResponse on errors (RFC 6749 §5.2)', () => {
  it('classifies a recorded Entra error body', () => {
    const body = JSON.stringify({
      error: 'invalid_grant',
      error_description:
        'AADSTS700082: The refresh token has expired due to inactivity. Trace ID: 2f1e Correlation ID: 9a0b Timestamp: 2026-01-01 12:00:00Z',
      error_codes: [700082],
      timestamp: '2026-01-01 12:00:00Z',
      trace_id: '2f1e',
      correlation_id: '9a0b',
      error_uri: 'https://login.microsoftonline.com/error?code=700082',
    });
    const err = thrown(() => parseTokenResponse(400, json, body, NOW));
    expect(err.code).toBe('consent_required');
    expect(err.providerError).toEqual({ error: 'invalid_grant', aadsts: 700082, status: 400 });
    expect(err.message).not.toContain('Trace ID');
  });

  it.each([
    ['not JSON', 'Bad Request', 400, 'upstream_unavailable'],
    ['empty', '', 400, 'upstream_unavailable'],
    ['an array', '[1,2]', 400, 'upstream_unavailable'],
    ['error not a string', '{"error":123}', 400, 'upstream_unavailable'],
    ['empty 401', '', 401, 'client_misconfigured'],
    ['HTML 502', '<html>Bad gateway</html>', 502, 'upstream_unavailable'],
  ] as const)('handles a garbage error body (%s)', (_name, body, status, code) => {
    const err = thrown(() => parseTokenResponse(status, new Headers(), body, NOW));
    expect(err.code).toBe(code);
    expect(err.providerError).toEqual({ error: `http_${status}`, aadsts: undefined, status });
  });

  it('passes the Retry-After of a 503 on', () => {
    const err = thrown(() =>
      parseTokenResponse(
        503,
        new Headers({ 'retry-after': '30' }),
        '{"error":"temporarily_unavailable","error_codes":[]}',
        NOW,
      ),
    );
    expect(err.code).toBe('upstream_unavailable');
    expect(err.retryAfter).toBe(30);
  });
});

describe('parseOAuthError', () => {
  it('takes the AADSTS number from error_codes[0]', () => {
    expect(parseOAuthError('{"error":"invalid_client","error_codes":[7000222,50000]}')).toEqual({
      error: 'invalid_client',
      errorDescription: undefined,
      aadsts: 7000222,
    });
  });

  it('falls back to the description', () => {
    const body =
      '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}';
    expect(parseOAuthError(body)?.aadsts).toBe(7000215);
  });

  it('has no AADSTS number for other providers', () => {
    expect(
      parseOAuthError('{"error":"invalid_grant","error_description":"Token expired"}')?.aadsts,
    ).toBeUndefined();
  });

  it('ignores malformed error_codes', () => {
    expect(parseOAuthError('{"error":"server_error","error_codes":"70008"}')).toEqual({
      error: 'server_error',
      errorDescription: undefined,
      aadsts: undefined,
    });
  });

  it.each(['', 'null', '"invalid_grant"', '{}', '{"error":""}', '<html/>'])('rejects %j', (body) => {
    expect(parseOAuthError(body)).toBeUndefined();
  });
});

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('reads an HTTP date against now', () => {
    expect(parseRetryAfter(new Date(NOW + 3_000).toUTCString(), NOW)).toBe(3);
    expect(parseRetryAfter(new Date(NOW - 60_000).toUTCString(), NOW)).toBe(0);
  });

  it('ignores garbage and absence', () => {
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
  });
});

describe('decodeJwtClaims', () => {
  it('decodes the payload of an id_token', () => {
    const claims = decodeJwtClaims(jwt({ preferred_username: 'ana@contoso.com', tid: 't1', exp: 1 }));
    expect(claims).toEqual({ preferred_username: 'ana@contoso.com', tid: 't1', exp: 1 });
  });

  it.each([
    ['empty', ''],
    ['not a JWT', 'opaque-access-token'],
    ['two parts', `${b64({})}.${b64({ a: 1 })}`],
    ['payload not JSON', `${b64({})}.bm90IGpzb24.sig`],
    ['payload an array', `${b64({})}.${b64([1])}.sig`],
    ['payload null', `${b64({})}.${b64(null)}.sig`],
    ['not base64url', `${b64({})}.@@@.sig`],
  ])('returns undefined for %s', (_name, value) => {
    expect(decodeJwtClaims(value)).toBeUndefined();
  });
});

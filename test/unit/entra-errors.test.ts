import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/lib/errors.js';
import { parseOAuthError, type TokenEndpointFailure } from '../../src/lib/oauth/index.js';
import { classifyEntraError } from '../../src/lib/providers/entra-errors.js';

const ECHO = "redirect_uri 'https://broker.example/api/callback?code=ECHOED-CODE'";
const TRAILER = ` (${ECHO}) Trace ID: 5d4b1c7e-0000 Correlation ID: 0f3e2a1b-0000 Timestamp: 2026-01-01 12:00:00Z`;

/** A body shaped like the Microsoft identity platform's, description echoing request data. */
function entraBody(error: string, aadsts: number, text: string): string {
  return JSON.stringify({
    error,
    error_description: `AADSTS${aadsts}: ${text}${TRAILER}`,
    error_codes: [aadsts],
    timestamp: '2026-01-01 12:00:00Z',
    trace_id: '5d4b1c7e-0000',
    correlation_id: '0f3e2a1b-0000',
    error_uri: `https://login.microsoftonline.com/error?code=${aadsts}`,
  });
}

function failure(status: number, body: string, retryAfter?: number): TokenEndpointFailure {
  return { status, oauthError: parseOAuthError(body), retryAfter };
}

describe('classifyEntraError: the table', () => {
  it.each<[string, number, ErrorCode, string]>([
    [
      'invalid_grant',
      70008,
      'consent_required',
      'The provided authorization code or refresh token has expired.',
    ],
    ['invalid_grant', 700082, 'consent_required', 'The refresh token has expired due to inactivity.'],
    ['invalid_grant', 50173, 'consent_required', 'The provided grant has expired due to it being revoked.'],
    ['invalid_grant', 700084, 'consent_required', 'The refresh token was issued to a single page app (SPA).'],
    ['invalid_grant', 54005, 'consent_required', 'OAuth2 Authorization code was already redeemed.'],
    [
      'invalid_grant',
      50076,
      'consent_required',
      "Due to a configuration change made by your administrator, you must use MFA to access '00000003-0000-0000-c000-000000000000'.",
    ],
    [
      'interaction_required',
      50079,
      'consent_required',
      'Due to a configuration change the user is required to use MFA.',
    ],
    [
      'invalid_grant',
      65001,
      'consent_required',
      "The user or administrator has not consented to use the application with ID 'x'.",
    ],
    ['invalid_grant', 50078, 'consent_required', 'Presented multi-factor authentication has expired.'],
    ['interaction_required', 50158, 'consent_required', 'External security challenge not satisfied.'],
    [
      'invalid_grant',
      530003,
      'consent_required',
      'Your device is required to be managed to access this resource.',
    ],
    [
      'invalid_client',
      7000215,
      'client_misconfigured',
      'Invalid client secret provided. Ensure the secret being sent is the client secret value.',
    ],
    [
      'invalid_client',
      7000222,
      'client_misconfigured',
      "The provided client secret keys for app 'x' are expired.",
    ],
    [
      'invalid_client',
      7000218,
      'client_misconfigured',
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ],
    [
      'unauthorized_client',
      700016,
      'client_misconfigured',
      "Application with identifier 'x' was not found in the directory 'contoso'.",
    ],
    [
      'invalid_request',
      50011,
      'client_misconfigured',
      "The redirect URI 'https://broker.example/api/callback' specified in the request does not match.",
    ],
    [
      'invalid_request',
      700054,
      'client_misconfigured',
      "response_type 'id_token' is not enabled for the application.",
    ],
    ['invalid_request', 90023, 'client_misconfigured', "Public clients can't send a client secret."],
    [
      'temporarily_unavailable',
      50196,
      'upstream_unavailable',
      'The server terminated an operation because it encountered a client request loop.',
    ],
  ])('%s AADSTS%i → %s', (error, aadsts, code, text) => {
    const err = classifyEntraError(failure(400, entraBody(error, aadsts, text)), { connectionId: 'mail' });
    expect(err.code).toBe(code);
    expect(err.providerError).toEqual({ error, aadsts, status: 400 });
    expect(err.connectionId).toBe('mail');
    expect(err.message).toContain(`AADSTS${aadsts}`);
    // The description can echo request data: never repeated.
    expect(err.message).not.toContain('ECHOED-CODE');
    expect(err.message).not.toContain('Trace ID');
  });

  it.each<[string, ErrorCode]>([
    ['invalid_grant', 'consent_required'],
    ['interaction_required', 'consent_required'],
    ['consent_required', 'consent_required'],
    ['login_required', 'consent_required'],
    ['invalid_client', 'client_misconfigured'],
    ['unauthorized_client', 'client_misconfigured'],
    ['unsupported_grant_type', 'client_misconfigured'],
    ['invalid_request', 'client_misconfigured'],
    ['temporarily_unavailable', 'upstream_unavailable'],
    ['server_error', 'upstream_unavailable'],
    ['something_new', 'upstream_unavailable'],
  ])('error=%s without an AADSTS number → %s', (error, code) => {
    const err = classifyEntraError(failure(400, JSON.stringify({ error })));
    expect(err.code).toBe(code);
    expect(err.providerError).toEqual({ error, aadsts: undefined, status: 400 });
  });

  it('lets a known AADSTS number win over the error name', () => {
    const body = entraBody('invalid_request', 7000222, 'The client secret keys are expired.');
    expect(classifyEntraError(failure(401, body)).code).toBe('client_misconfigured');
  });

  it('falls back to the error name for an AADSTS number not in the table', () => {
    const body = entraBody('invalid_grant', 9999999, 'Something new.');
    expect(classifyEntraError(failure(400, body)).code).toBe('consent_required');
  });
});

describe('classifyEntraError: details say what to do', () => {
  it('names the consent link for a dead grant', () => {
    const body = entraBody('invalid_grant', 700082, 'The refresh token has expired due to inactivity.');
    const err = classifyEntraError(failure(400, body), { connectionId: 'support-mailbox' });
    expect(err.message).toBe(
      'The refresh token expired after 90 days without use (invalid_grant, AADSTS700082). ' +
        'Open /api/start?connection=support-mailbox to consent again.',
    );
    expect(err.retryAfter).toBeUndefined();
  });

  it('names the secret to set for a wrong or expired client secret', () => {
    const body = entraBody('invalid_client', 7000222, 'The provided client secret keys are expired.');
    const err = classifyEntraError(failure(401, body), {
      connectionId: 'onedrive',
      secretName: 'onedrive-secret',
    });
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toContain('broker secrets set onedrive-secret');
  });

  it('points at the app registration for other client errors', () => {
    const body = entraBody('unauthorized_client', 700016, 'Application not found.');
    expect(classifyEntraError(failure(400, body)).message).toMatch(/app registration/);
  });
});

describe('classifyEntraError: scope errors depend on who chose the scope', () => {
  const invalidScope = entraBody(
    'invalid_scope',
    70011,
    "The provided value for the input parameter 'scope' is not valid.",
  );

  it('blames the caller for a bad requested scope', () => {
    const err = classifyEntraError(failure(400, invalidScope), { otherScope: 'https://a.example.com/x' });
    expect(err.code).toBe('invalid_request');
    expect(err.providerError).toEqual({ error: 'invalid_scope', aadsts: 70011, status: 400 });
  });

  it("blames the configuration for a bad scope of the connection's own", () => {
    const err = classifyEntraError(failure(400, invalidScope), { otherScope: undefined });
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toMatch(/scopes/);
  });

  it('treats missing consent for another scope as the caller asking too much, not a dead grant', () => {
    const body = entraBody('invalid_grant', 65001, 'The user or administrator has not consented.');
    expect(classifyEntraError(failure(400, body), { otherScope: 'https://a.example.com/x' }).code).toBe(
      'invalid_request',
    );
    expect(classifyEntraError(failure(400, body), { otherScope: undefined }).code).toBe('consent_required');
  });

  it('recognises an invalid_request about the scope', () => {
    const body = JSON.stringify({
      error: 'invalid_request',
      error_description: 'AADSTS9999998: The scope is malformed.',
      error_codes: [9999998],
    });
    expect(classifyEntraError(failure(400, body), { otherScope: 'https://a.example.com/x' }).code).toBe(
      'invalid_request',
    );
  });

  it('keeps a dead grant dead whatever the scope', () => {
    const body = entraBody('invalid_grant', 700082, 'The refresh token has expired due to inactivity.');
    expect(classifyEntraError(failure(400, body), { otherScope: 'https://a.example.com/x' }).code).toBe(
      'consent_required',
    );
  });
});

describe('classifyEntraError: outages and the unknown', () => {
  it.each([429, 500, 502, 503, 504])(
    'HTTP %i → upstream_unavailable with a default Retry-After',
    (status) => {
      const err = classifyEntraError({ status });
      expect(err.code).toBe('upstream_unavailable');
      expect(err.retryAfter).toBe(5);
      expect(err.providerError).toEqual({ error: `http_${status}`, aadsts: undefined, status });
    },
  );

  it("keeps the provider's own Retry-After", () => {
    const body = JSON.stringify({ error: 'temporarily_unavailable', error_codes: [] });
    const err = classifyEntraError(failure(503, body, 42));
    expect(err.retryAfter).toBe(42);
    expect(err.message).toContain('42 s');
  });

  it('treats a 5xx as an outage even when the body says invalid_grant', () => {
    const body = entraBody('invalid_grant', 700082, 'Expired.');
    expect(classifyEntraError(failure(500, body)).code).toBe('upstream_unavailable');
  });

  it('blames the client for a bare 401 and a 404', () => {
    expect(classifyEntraError({ status: 401 }).code).toBe('client_misconfigured');
    expect(classifyEntraError({ status: 404 }).code).toBe('client_misconfigured');
  });

  it('leaves a grant alone on an unrecognised 400', () => {
    const err = classifyEntraError({ status: 400 });
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toMatch(/does not recognise/);
  });
});

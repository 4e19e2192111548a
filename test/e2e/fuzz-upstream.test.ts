import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import type { InjectedResponse } from '../fakes/entra.js';
import { anyText, fuzzParams, fuzzRuns, jsonField, providerBodies } from '../support/fuzz.js';
import { FUNCTION_KEY, type Stack, startStack, TEST_ALLOWED_SCOPES } from './harness.js';

/**
 * The provider answers garbage (random bodies, wrong types, bodies over 1 MiB, truncated JSON, 3xx)
 * to token, device and discovery calls (DESIGN.md, "Hostile input rules"): every answer is a
 * classified error (or, for what happens to be a valid answer, a success), never a 5xx other than
 * the documented 503, and a grant is never lost: the stored refresh token and its status are unchanged
 * after a garbage answer to a refresh. Seeded like fuzz-routes (`FUZZ_SEED`, `FUZZ_RUNS`).
 */

const HOUR = 3_600_000;
const OVER_1_MIB = 'x'.repeat(1024 * 1024 + 17);
const CLASSIFIED = new Set([
  'consent_required',
  'consent_failed',
  'client_misconfigured',
  'upstream_unavailable',
  'invalid_request',
]);

const wrong = jsonField;
/** Token/device/discovery-shaped JSON with wrong types. Never a usable token set (see `noToken`). */
const shaped = fc
  .record(
    {
      access_token: wrong,
      token_type: wrong,
      expires_in: wrong,
      refresh_token: wrong,
      id_token: wrong,
      error: fc.oneof(
        wrong,
        fc.constantFrom(
          'invalid_grant',
          'invalid_client',
          'server_error',
          'temporarily_unavailable',
          'slow_down',
        ),
      ),
      error_description: wrong,
      error_codes: wrong,
      device_code: wrong,
      user_code: wrong,
      verification_uri: wrong,
      interval: wrong,
      issuer: wrong,
      authorization_endpoint: wrong,
      token_endpoint: wrong,
    },
    { requiredKeys: [] },
  )
  .map(noToken);

/** A garbage answer must not be a valid token set (that would be a provider rotating the grant). */
function noToken(o: Record<string, unknown>): Record<string, unknown> {
  const { access_token: _, ...rest } = o;
  return typeof o.access_token === 'string' ? rest : o;
}

const body = fc.oneof(
  providerBodies(shaped, anyText),
  fc.constant(''),
  fc.constant(OVER_1_MIB),
  fc.constant(`{"error":"invalid_grant","error_description":"${OVER_1_MIB}"}`),
);
const garbage: fc.Arbitrary<InjectedResponse> = fc.record({
  status: fc.oneof(
    fc.constantFrom(200, 201, 204, 301, 302, 307, 308, 400, 401, 403, 404, 429, 500, 502, 503),
    fc.integer({ min: 200, max: 599 }),
  ),
  headers: fc.record(
    {
      'content-type': fc.constantFrom(
        'application/json',
        'text/html',
        'text/plain',
        'application/json; charset=utf-8',
      ),
      location: fc.constantFrom('https://evil.example.com/', '/elsewhere', 'javascript:alert(1)'),
      'retry-after': fc.oneof(fc.constantFrom('0', '1', '2', 'soon', '-1', '99999'), anyText),
    },
    { requiredKeys: [] },
  ),
  body,
});

/** What /api answered, and how fast. */
async function call(stack: Stack, path: string, accept = 'application/json') {
  const started = Date.now();
  const res = await stack.api(path, { headers: { accept } });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, ms: Date.now() - started };
}

function checkClassified(where: string, a: Awaited<ReturnType<typeof call>>): void {
  expect(a.status === 503 || a.status < 500 || a.status === 502, `${where} → ${a.status}`).toBe(true);
  // Retries of a 429/5xx are bounded to a few seconds (DESIGN.md `upstream_unavailable`).
  expect(a.ms, `${where} took ${a.ms} ms`).toBeLessThan(15_000);
  if (a.status >= 400) {
    expect(a.type, where).toMatch(/^application\/problem\+json/);
    const code = (JSON.parse(a.text) as { code: string }).code;
    expect(CLASSIFIED.has(code), `${where}: ${code}`).toBe(true);
  }
}

async function grantOf(stack: Stack, id: string) {
  const secret = await stack.local.broker.store.getSecret(`rt-${id}`);
  return { value: secret?.value, status: secret?.tags.status };
}

/** An issuer whose discovery document is whatever the test queued (else a 500). */
async function startIssuer(): Promise<{ url: string; next: InjectedResponse[]; server: Server }> {
  const next: InjectedResponse[] = [];
  const server = createServer((_req, res) => {
    const answer = next.shift() ?? { status: 500, body: '' };
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, next, server };
}

describe('a provider answering garbage', () => {
  let stack: Stack;
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  beforeAll(async () => {
    issuer = await startIssuer();
    stack = await startStack({
      connections: {
        support: {},
        outlook: { flow: 'device_code', tenant: 'consumers', credential: undefined },
        generic: { provider: 'oauth2', issuer: issuer.url, scopes: ['openid', 'api.read'] },
      },
      overrides: { providerTimeoutMs: 2000 },
    });
    expect((await consent(stack.url, FUNCTION_KEY, 'support', { account: 'fuzz@contoso.com' })).status).toBe(
      200,
    );
  });
  afterAll(async () => {
    await stack?.close();
    await new Promise((resolve) => issuer?.server.close(resolve));
  });

  it(`to a refresh: a classified error, and the grant is never lost (${fuzzRuns(100)} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        garbage,
        fc.constantFrom(...TEST_ALLOWED_SCOPES),
        fc.boolean(),
        async (answer, scope, own) => {
          // Past every cached token, so this call refreshes.
          stack.clock.advance(2 * HOUR);
          const before = await grantOf(stack, 'support');
          expect(before.status, 'the grant is connected before each case').toBe('connected');
          stack.sim.failNext('token', answer);
          const path = own
            ? '/api/token?connection=support'
            : `/api/token?connection=support&scope=${encodeURIComponent(scope)}`;
          const a = await call(stack, path);
          checkClassified(`token ${answer.status}`, a);
          if (a.status !== 200) {
            const after = await grantOf(stack, 'support');
            // A failure of the grant's own refresh may mark it needs_consent only on a real dead-grant answer.
            if (own && after.status === 'needs_consent') {
              // Only an answer carrying an OAuth error (RFC 6749 §5.2) can say the grant is dead.
              expect(answer.body ?? '', 'needs_consent without an OAuth error').toMatch(
                /"error":"(invalid_grant|interaction_required|consent_required|access_denied)/,
              );
              // Put the grant back for the next case (a new consent is what a person would do).
              const again = await consent(stack.url, FUNCTION_KEY, 'support', {
                account: 'fuzz@contoso.com',
              });
              expect(again.status).toBe(200);
              return;
            }
            expect(after, `token ${answer.status}: grant changed`).toEqual(before);
          }
        },
      ),
      fuzzParams(100),
    );
  }, 600_000);

  it(`to a device authorization: a classified error or the user code (${fuzzRuns(60)} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(garbage, async (answer) => {
        stack.sim.failNext('devicecode', answer);
        const a = await call(stack, '/api/start?connection=outlook');
        checkClassified(`devicecode ${answer.status}`, a);
        if (a.status === 200) expect(JSON.parse(a.text)).toHaveProperty('userCode');
      }),
      fuzzParams(60),
    );
  }, 600_000);

  // Fewer cases: a 5xx discovery answer is retried for each discovery URL, a few seconds a case.
  it(`to discovery: a classified error or the sign-in redirect (${fuzzRuns(15)} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(garbage, async (answer) => {
        // Past the discovery cache, so this start asks again.
        stack.clock.advance(25 * HOUR);
        issuer.next.length = 0;
        // Without Retry-After: a 429/5xx would otherwise wait up to 5 s per attempt (tested elsewhere).
        const { 'retry-after': _, ...headers } = answer.headers ?? {};
        issuer.next.push(...Array.from({ length: 8 }, () => ({ ...answer, headers })));
        const a = await call(stack, '/api/start?connection=generic');
        checkClassified(`discovery ${answer.status}`, a);
        if (a.status < 400) expect(a.status).toBe(302);
      }),
      fuzzParams(15),
    );
  }, 600_000);
});

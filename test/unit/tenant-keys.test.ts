import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { CallerVerifier } from '../../src/lib/auth/caller-verifier.js';
import { ManualClock } from '../../src/lib/clock.js';
import { BrokerError } from '../../src/lib/errors.js';
import { jsonResponse } from '../support/fetch.js';

const AUTHORITY = 'https://login.example.test';
const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
const API = '0f6c2a9e-3d41-4b8a-a7e5-5c9d1e2b4f60';
const OID = '11111111-1111-4111-8111-111111111111';
const connection = { id: 'mail', callers: [{ name: 'engine', objectId: OID }] };

type Signer = (claims: JWTPayload, kid?: string) => Promise<string>;

async function keyPair(kid: string): Promise<{ jwk: JWK; sign: Signer }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const sign: Signer = (claims, k = kid) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: k, typ: 'JWT' }).sign(privateKey);
  return { jwk, sign };
}

/**
 * The key endpoint as a switch: `answer` decides each fetch (a key set, a 500, a huge body), and
 * `fetches` counts them. DESIGN.md, "Who may ask", hardening: never one fetch per request.
 */
function keyEndpoint() {
  const state = {
    fetches: 0,
    answer: (): Response => jsonResponse(500, { error: 'temporarily_unavailable' }),
  };
  const fetchKeys = (async (url: string | URL | Request) => {
    state.fetches++;
    expect(String(url)).toBe(`${AUTHORITY}/${TENANT}/discovery/v2.0/keys`);
    return state.answer();
  }) as typeof fetch;
  return { state, fetchKeys };
}

describe('the tenant key set (CallerVerifier, CALLER_AUTH=entra)', () => {
  let k1: Awaited<ReturnType<typeof keyPair>>;
  let k2: Awaited<ReturnType<typeof keyPair>>;
  let clock: ManualClock;
  let claims: JWTPayload;

  beforeAll(async () => {
    k1 = await keyPair('k1');
    k2 = await keyPair('k2');
  });

  const setUp = () => {
    clock = new ManualClock(Date.UTC(2026, 10, 1));
    const now = Math.floor(clock.now() / 1000);
    claims = {
      iss: `${AUTHORITY}/${TENANT}/v2.0`,
      aud: API,
      tid: TENANT,
      oid: OID,
      sub: OID,
      idtyp: 'app',
      roles: ['Token.Request'],
      iat: now,
      nbf: now,
      exp: now + 3600,
    };
    const endpoint = keyEndpoint();
    const verifier = new CallerVerifier(
      { mode: 'entra', tenantId: TENANT, authority: AUTHORITY, audiences: [API] },
      clock,
      { fetch: endpoint.fetchKeys },
    );
    const verify = (token: string) =>
      verifier.verify(`Bearer ${token}`, () => connection).catch((e: unknown) => e as BrokerError);
    return { ...endpoint, verify };
  };

  it('20 requests while the key endpoint fails make at most one fetch, each answered 503 with Retry-After', async () => {
    const { state, verify } = setUp();
    const token = await k1.sign(claims);
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await verify(token));
    answers.push(...(await Promise.all(Array.from({ length: 10 }, () => verify(token)))));
    expect(state.fetches).toBe(1);
    for (const a of answers) {
      expect(a).toBeInstanceOf(BrokerError);
      expect(a).toMatchObject({ code: 'upstream_unavailable', retryAfter: 30 });
    }
    // Retry-After counts down the cooldown; once it is over, one new attempt.
    clock.advance(12_000);
    expect(await verify(token)).toMatchObject({ code: 'upstream_unavailable', retryAfter: 18 });
    expect(state.fetches).toBe(1);
    clock.advance(18_000);
    state.answer = () => jsonResponse(200, { keys: [k1.jwk] });
    expect(await verify(token)).toEqual({ name: 'engine', id: OID });
    expect(state.fetches).toBe(2);
  });

  it('a known key keeps verifying while the endpoint fails: a bad signature is 401, an unknown key 503', async () => {
    const { state, verify } = setUp();
    state.answer = () => jsonResponse(200, { keys: [k1.jwk] });
    expect(await verify(await k1.sign(claims))).toMatchObject({ id: OID });
    expect(state.fetches).toBe(1);
    state.answer = () => jsonResponse(503, {});
    // Past the cache's age: the refetch fails, and the keys already known still serve.
    clock.advance(11 * 60_000);
    const good = await k1.sign(claims);
    const [header, payload] = good.split('.') as [string, string];
    const forged = `${header}.${payload}.${(await k2.sign(claims, 'k1')).split('.')[2]}`;
    expect(await verify(forged)).toMatchObject({ code: 'unauthorized', challenge: 'Bearer' });
    expect(((await verify(forged)) as BrokerError).message).toContain('signature');
    expect(await verify(good)).toMatchObject({ id: OID });
    expect(await verify(await k2.sign(claims))).toMatchObject({ code: 'upstream_unavailable' });
    expect(state.fetches).toBe(2);
  });

  it('an unknown key after a good fetch is 401, and the keys are not fetched again for 30 s', async () => {
    const { state, verify } = setUp();
    state.answer = () => jsonResponse(200, { keys: [k1.jwk] });
    expect(await verify(await k1.sign(claims))).toMatchObject({ id: OID });
    for (let i = 0; i < 5; i++) {
      expect(await verify(await k2.sign(claims))).toMatchObject({ code: 'unauthorized' });
    }
    expect(state.fetches).toBe(1);
    // A rollover: Entra publishes k2; after the cooldown the unknown kid fetches once and passes.
    state.answer = () => jsonResponse(200, { keys: [k1.jwk, k2.jwk] });
    clock.advance(30_000);
    expect(await verify(await k2.sign(claims))).toMatchObject({ id: OID });
    expect(state.fetches).toBe(2);
  });

  it.each([
    ['larger than 1 MiB', () => jsonResponse(200, { keys: [{ kty: 'RSA', n: 'A'.repeat(1024 * 1024) }] })],
    ['not JSON', () => new Response('<html>proxy error</html>', { status: 200 })],
    ['an empty key set', () => jsonResponse(200, { keys: [] })],
  ])('a key set %s is a failed fetch: 503, and counted for the cooldown', async (_name, answer) => {
    const { state, verify } = setUp();
    state.answer = answer;
    const token = await k1.sign(claims);
    expect(await verify(token)).toMatchObject({ code: 'upstream_unavailable' });
    expect(await verify(token)).toMatchObject({ code: 'upstream_unavailable' });
    expect(state.fetches).toBe(1);
  });
});

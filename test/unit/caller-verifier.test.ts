import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
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

/** The validation table of DESIGN.md, "Who may ask": each row one claim or header off. */
describe('CallerVerifier', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const now = Math.floor(clock.now() / 1000);
  let sign: (claims: JWTPayload, header?: Record<string, unknown>) => Promise<string>;
  let keyFetches = 0;
  let verifier: CallerVerifier;
  const good: JWTPayload = {
    iss: `${AUTHORITY}/${TENANT}/v2.0`,
    aud: API,
    tid: TENANT,
    oid: OID,
    sub: OID,
    roles: ['Token.Request'],
    idtyp: 'app',
    iat: now,
    nbf: now,
    exp: now + 3600,
  };

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    sign = (claims, header = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT', ...header })
        .sign(privateKey);
    const fetchKeys = (async (url: string | URL | Request) => {
      keyFetches++;
      expect(String(url)).toBe(`${AUTHORITY}/${TENANT}/discovery/v2.0/keys`);
      return jsonResponse(200, { keys: [jwk] });
    }) as typeof fetch;
    verifier = new CallerVerifier(
      { mode: 'entra', tenantId: TENANT, authority: AUTHORITY, audiences: [API, 'api://broker'] },
      clock,
      { fetch: fetchKeys },
    );
  });

  const refusal = async (token: string) => {
    const err = await verifier.verify(`Bearer ${token}`, () => connection).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerError);
    return err as BrokerError;
  };

  it('accepts a v2 app token of a listed caller with Token.Request, and a v1 one', async () => {
    expect(await verifier.verify(`Bearer ${await sign(good)}`, () => connection)).toEqual({
      name: 'engine',
      id: OID,
    });
    const v1 = { ...good, iss: `https://sts.windows.net/${TENANT}/`, aud: 'api://broker' };
    expect((await verifier.verify(`bearer ${await sign(v1)}`, () => connection)).name).toBe('engine');
  });

  it.each([
    ['no header', null],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['an empty bearer', 'Bearer '],
  ])('401 for %s', async (_name, header) => {
    const err = await verifier.verify(header, () => connection).catch((e: unknown) => e as BrokerError);
    expect(err).toMatchObject({ code: 'unauthorized', challenge: 'Bearer' });
  });

  const table: [string, JWTPayload, string][] = [
    ['expired beyond the 5 min skew', { exp: now - 301, nbf: now - 3600 }, 'expired'],
    ['not valid for 6 more minutes', { nbf: now + 360 }, 'not valid yet'],
    ['another audience', { aud: 'api://other' }, 'audience'],
    ['another issuer', { iss: `${AUTHORITY}/other/v2.0` }, 'issuer'],
    ['another tenant', { tid: API }, "broker's tenant"],
    ['a delegated token', { scp: 'user_impersonation' }, 'delegated'],
    ['no oid', { oid: undefined }, 'names no caller'],
    ['a user token by idtyp', { idtyp: 'user' }, 'not an app token'],
    ['a sub that is not the oid', { sub: 'pairwise-subject-of-someone' }, 'not an app token'],
    ['no sub', { sub: undefined }, 'not an app token'],
  ];
  it.each(table)('401 for %s', async (_name, change, words) => {
    const claims = { ...good, ...change };
    for (const k of Object.keys(change)) if (change[k] === undefined) delete claims[k];
    const err = await refusal(await sign(claims));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toContain(words);
  });

  it('401 for the ID token of an App Service sign-in, shaped like Entra issues it (roles and all)', async () => {
    // A v2 ID token for the broker's own app registration: aud = its client id, the v2 issuer, tid and
    // oid, the person's app roles, no scp and no idtyp; its sub is pairwise (per app), never the oid.
    const idToken: JWTPayload = {
      aud: API,
      iss: `${AUTHORITY}/${TENANT}/v2.0`,
      iat: now,
      nbf: now,
      exp: now + 3600,
      aio: 'AUQAu/8ZAAAA1EfD6lZnHrGvQJ3yK0PpOq==',
      email: 'ops@contoso.com',
      name: 'Ops Person',
      nonce: '638700000000000000.NjJjYzQ1',
      oid: OID,
      preferred_username: 'ops@contoso.com',
      rh: '1.AQ4AChd8PG8rfkyaUS9Ni24MEw.',
      roles: ['Token.Request', 'Broker.Admin'],
      sid: '001c1a3f-5d2e-4b1a-9e55-2a2b9c1d0e7f',
      sub: 'k3Vx9Y6m1wq2Jb7QZ0yH4tR8sN5uP3cL2dF1gA0eB9o',
      tid: TENANT,
      uti: 'Zk1pD2xYbUe0Wq9rT8sA3Q',
      ver: '2.0',
    };
    const err = await refusal(await sign(idToken));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toContain('not an app token');
  });

  it('accepts a token expired by less than the skew', async () => {
    expect(
      (await verifier.verify(`Bearer ${await sign({ ...good, exp: now - 200 })}`, () => connection)).id,
    ).toBe(OID);
  });

  it('refuses alg none and HS256 without asking for keys again', async () => {
    const before = keyFetches;
    const payload = Buffer.from(JSON.stringify(good)).toString('base64url');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect((await refusal(none)).message).toContain('RS256');
    const hs = `${Buffer.from('{"alg":"HS256","kid":"k1"}').toString('base64url')}.${payload}.c2ln`;
    expect((await refusal(hs)).message).toContain('RS256');
    expect(keyFetches).toBe(before);
  });

  it('403 caller_not_allowed for a caller not listed, or listed without the role', async () => {
    const other = '22222222-2222-4222-8222-222222222222';
    expect((await refusal(await sign({ ...good, oid: other, sub: other }))).code).toBe('caller_not_allowed');
    expect((await refusal(await sign({ ...good, roles: ['Other'] }))).code).toBe('caller_not_allowed');
  });

  it('looks the connection up only once the token is good', async () => {
    let asked = 0;
    const lookup = () => {
      asked++;
      return connection;
    };
    await verifier.verify('Bearer nope', lookup).catch(() => undefined);
    expect(asked).toBe(0);
    await verifier.verify(`Bearer ${await sign(good)}`, lookup);
    expect(asked).toBe(1);
  });
});

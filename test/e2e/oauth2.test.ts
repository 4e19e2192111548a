import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { approveDeviceCode, oidcConsent } from '../fakes/oidc-consent.js';
import { type OidcFake, startOidcProvider } from '../fakes/oidc-provider.js';
import { testCertificate } from '../fakes/tls.js';
import type { Problem, TokenBody } from '../support/http-types.js';
import { freePort } from '../support/net.js';
import { CLIENT_ID, findLeaks, type Stack, startStack } from './harness.js';

const HOUR = 60 * 60 * 1000;
/** Rotation passes in a row, each rotating every connected grant. */
const ROTATIONS = 40;
const BURST = 50;

/**
 * The `oauth2` dialect against panva's oidc-provider over real HTTP: refresh-token rotation with reuse
 * detection on (a rotated token presented again revokes the grant), PKCE required, device flow on.
 * The broker must never present a refresh token twice: not across the timer, concurrent callers,
 * scopes, or restarts.
 */
describe('oauth2 against oidc-provider', () => {
  let op: OidcFake;
  let stack: Stack;
  let issuer: string;
  /** Every token the test saw or the store held: none may appear in a log or a data file. */
  const seen = new Set<string>();

  const token = async (connection: string, scope?: string) => {
    const res = await stack.api(
      `/api/token?connection=${connection}${scope ? `&scope=${encodeURIComponent(scope)}` : ''}`,
    );
    const body = (await res.json()) as TokenBody & Problem;
    if (res.status === 200) seen.add(body.access_token);
    return { status: res.status, body };
  };
  const storedRefreshToken = async (connection: string) => {
    const secret = (await stack.local.broker.store.getSecret(`rt-${connection}`))!;
    seen.add(secret.value);
    return secret;
  };
  const health = async (id: string) => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === id)!;
  };
  /** The provider's own view of a token: its UserInfo endpoint accepts only live access tokens. */
  const userinfo = async (accessToken: string) =>
    fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  const refreshGrants = () => op.stats.grants.refresh_token ?? 0;

  const cert = testCertificate({ cn: 'oauth2 client' });

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    stack = await startStack({
      connections: {
        generic: { provider: 'oauth2', issuer, scopes: ['openid', 'email', 'api.read'], rotateAfter: 'PT1H' },
        certified: {
          provider: 'oauth2',
          issuer,
          clientId: 'cert-client',
          credential: { type: 'certificate', secretName: 'oauth2-cert' },
          scopes: ['openid', 'api.read'],
          rotateAfter: 'PT1S',
        },
        posted: {
          provider: 'oauth2',
          issuer,
          clientId: 'post-client',
          tokenEndpointAuthMethod: 'client_secret_post',
          scopes: ['openid', 'api.read'],
        },
        explicit: {
          provider: 'oauth2',
          authorizationEndpoint: `${issuer}/auth`,
          tokenEndpoint: `${issuer}/token`,
          scopes: ['openid', 'api.read'],
        },
        device: { provider: 'oauth2', issuer, flow: 'device_code', scopes: ['openid', 'email', 'api.read'] },
        victim: { provider: 'oauth2', issuer, scopes: ['openid', 'api.read'] },
      },
    });
    await stack.local.broker.store.setSecret('oauth2-cert', cert.bundle);
    const redirectUris = [`${stack.url}/api/callback`];
    op = await startOidcProvider({
      port,
      scopes: ['api.read', 'api.write'],
      clients: [
        { clientId: CLIENT_ID, clientSecret: stack.clientSecret, redirectUris },
        {
          clientId: 'cert-client',
          redirectUris,
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: [
            {
              ...new X509Certificate(cert.cert).publicKey.export({ format: 'jwk' }),
              alg: 'RS256',
              use: 'sig',
            },
          ],
        },
        {
          clientId: 'post-client',
          clientSecret: stack.clientSecret,
          redirectUris,
          tokenEndpointAuthMethod: 'client_secret_post',
        },
      ],
    });
  });
  afterAll(async () => {
    await stack?.close();
    await op?.close();
  });
  afterEach(async () => {
    expect(op.stats.serverErrors).toEqual([]);
    expect(await findLeaks(stack, [...seen])).toEqual([]);
  });

  it('consents through the provider’s real login and consent pages, with PKCE', async () => {
    const outcome = await oidcConsent(stack.url, stack.local.functionKey, 'generic', {
      login: 'alice@example.com',
    });
    expect(outcome.pages).toEqual(['login', 'consent']);
    expect(outcome.status).toBe(200);
    expect(outcome.body).toContain('alice@example.com');
    expect(op.stats.grants.authorization_code).toBe(1);
    expect(await health('generic')).toMatchObject({
      provider: 'oauth2',
      status: 'connected',
      account: 'alice@example.com',
    });
    await storedRefreshToken('generic');
  });

  // Early: the provider checks assertion times by the real clock, before the injected one runs ahead.
  it('authenticates with private_key_jwt for a certificate credential', async () => {
    const outcome = await oidcConsent(stack.url, stack.local.functionKey, 'certified', {
      login: 'frank@example.com',
    });
    expect(outcome.status).toBe(200);
    const { status, body } = await token('certified');
    expect(status).toBe(200);
    expect((await userinfo(body.access_token)).status).toBe(200);
    // A refresh too; the provider checks the assertion's times by the real clock, so the injected
    // one moves just past rotateAfter (PT1S).
    stack.clock.advance(1500);
    const results = await stack.local.broker.rotation.rotationPass();
    expect(results.find((r) => r.connection === 'certified')).toMatchObject({ outcome: 'rotated' });
    expect(op.stats.grants.refresh_token).toBeGreaterThan(0);
    expect(op.stats.errors).toEqual([]);
  });

  it('vends a token the provider accepts, with the granted scope', async () => {
    const { status, body } = await token('generic');
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(body.scope.split(' ')).toEqual(
      expect.arrayContaining(['openid', 'email', 'api.read', 'offline_access']),
    );
    const me = await userinfo(body.access_token);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ sub: 'alice@example.com', email: 'alice@example.com' });
  });

  it('mints a narrower token for `scope` from the same grant, storing the rotated refresh token', async () => {
    const before = await storedRefreshToken('generic');
    const { status, body } = await token('generic', 'api.read');
    expect(status).toBe(200);
    expect(body.scope).toBe('api.read');
    const after = await storedRefreshToken('generic');
    expect(after.value).not.toBe(before.value);
    expect(op.stats.reuseDetected).toBe(0);
  });

  it(`rotates by the timer ${ROTATIONS} times in a row, with callers in between, and never reuses a refresh token`, async () => {
    const rotatedBefore = op.stats.rotated;
    const values = new Set<string>([(await storedRefreshToken('generic')).value]);
    for (let i = 0; i < ROTATIONS; i++) {
      stack.clock.advance(HOUR + 60_000);
      // The timer's pass, and callers for both scopes at the same moment: one lock, one token at a time.
      const [results, own, narrow] = await Promise.all([
        stack.local.broker.rotation.rotationPass({ onlyId: 'generic' }),
        token('generic'),
        token('generic', 'api.read'),
      ]);
      expect(results).toEqual([{ connection: 'generic', outcome: 'rotated' }]);
      expect([own.status, narrow.status]).toEqual([200, 200]);
      values.add((await storedRefreshToken('generic')).value);
    }
    // Every pass and every refresh rotated the token; each was redeemed once and only once.
    const rotations = op.stats.rotated - rotatedBefore;
    expect(rotations).toBeGreaterThanOrEqual(ROTATIONS);
    expect(values.size).toBe(ROTATIONS + 1);
    expect(op.stats.reuseDetected).toBe(0);
    expect(op.stats.revokedGrants).toBe(0);
    expect(op.stats.errors).toEqual([]);
    console.info(
      `oauth2 e2e: ${ROTATIONS} timer passes, ${rotations} rotations at the provider, 0 reuse detected`,
    );
  });

  it(`answers a ${BURST}-caller cold burst after a restart with one refresh, then survives another restart`, async () => {
    await stack.restart();
    const before = refreshGrants();
    const bodies = await Promise.all(Array.from({ length: BURST }, () => token('generic')));
    expect(bodies.every((b) => b.status === 200)).toBe(true);
    expect(new Set(bodies.map((b) => b.body.access_token)).size).toBe(1);
    expect(refreshGrants() - before).toBe(1);

    await stack.restart();
    stack.clock.advance(HOUR + 60_000);
    const after = await token('generic');
    expect(after.status).toBe(200);
    expect((await userinfo(after.body.access_token)).status).toBe(200);
    expect(await health('generic')).toMatchObject({ status: 'connected', lastError: null });
    expect(op.stats.reuseDetected).toBe(0);
    expect(op.stats.revokedGrants).toBe(0);
  });

  it('authenticates with client_secret_post when configured', async () => {
    const outcome = await oidcConsent(stack.url, stack.local.functionKey, 'posted', {
      login: 'erin@example.com',
    });
    expect(outcome.status).toBe(200);
    stack.clock.advance(2 * HOUR);
    const { status, body } = await token('posted');
    expect(status).toBe(200);
    expect((await userinfo(body.access_token)).status).toBe(200);
    expect(await health('posted')).toMatchObject({ status: 'connected', account: 'erin@example.com' });
  });

  it('works from explicit endpoints without discovery', async () => {
    const outcome = await oidcConsent(stack.url, stack.local.functionKey, 'explicit', {
      login: 'dave@example.com',
    });
    expect(outcome.status).toBe(200);
    // No discovery, so no UserInfo endpoint: the account is the id_token's subject.
    expect((await health('explicit')).account).toBe('dave@example.com');
    stack.clock.advance(2 * HOUR);
    expect((await token('explicit')).status).toBe(200);
  });

  it('connects a device_code connection through the provider’s device page', async () => {
    const start = await stack.api('/api/start?connection=device', {
      headers: { accept: 'application/json' },
    });
    expect(start.status).toBe(200);
    const device = (await start.json()) as {
      userCode: string;
      verificationUri: string;
      interval: number;
      pollUrl: string;
    };
    expect(device.verificationUri).toBe(`${issuer}/device`);
    const approved = await approveDeviceCode(device.verificationUri, device.userCode, {
      login: 'bob@example.com',
    });
    expect(approved.pages).toEqual(['device', 'device-confirm', 'login', 'consent']);
    expect(approved.html).toContain('Sign-in Success');

    stack.clock.advance(device.interval * 1000);
    const poll = await stack.api(new URL(device.pollUrl).pathname + new URL(device.pollUrl).search, {
      headers: { accept: 'application/json' },
    });
    expect(await poll.json()).toMatchObject({ status: 'connected', account: 'bob@example.com' });
    stack.clock.advance(2 * HOUR);
    expect((await token('device')).status).toBe(200);
    await storedRefreshToken('device');
  });

  it('reports a consent declined on the provider’s page', async () => {
    const outcome = await oidcConsent(stack.url, stack.local.functionKey, 'victim', { deny: true });
    expect(outcome.status).toBe(400);
    expect(outcome.body).toContain('access_denied');
  });

  it('would be caught: the provider revokes a grant whose old refresh token is presented again', async () => {
    // The control experiment for "0 reuse detected": reuse is detected here, and kills the grant.
    expect(
      (await oidcConsent(stack.url, stack.local.functionKey, 'victim', { login: 'carol@example.com' }))
        .status,
    ).toBe(200);
    const old = await storedRefreshToken('victim');
    stack.clock.advance(2 * HOUR);
    expect((await token('victim')).status).toBe(200);
    expect((await storedRefreshToken('victim')).value).not.toBe(old.value);
    const replay = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${stack.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: old.value }),
    });
    expect(replay.status).toBe(400);
    expect(op.stats.reuseDetected).toBe(1);
    expect(op.stats.revokedGrants).toBe(1);

    stack.clock.advance(2 * HOUR);
    const dead = await token('victim');
    expect(dead.status).toBe(409);
    expect(dead.body.code).toBe('consent_required');
    expect(await health('victim')).toMatchObject({ status: 'needs_consent', lastError: 'invalid_grant' });
    // The grant the broker kept alive is untouched.
    expect((await token('generic')).status).toBe(200);
  });
});

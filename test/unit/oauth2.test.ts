import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { type Connection, oauth2Connection } from '../../src/lib/config/connections.js';
import { BrokerError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import {
  chooseClientAuthMethod,
  classifyOAuthError,
  discoveryUrls,
  parseProviderMetadata,
} from '../../src/lib/oauth/index.js';
import { oauth2Dialect } from '../../src/lib/providers/oauth2.js';
import type { ProviderDialect } from '../../src/lib/providers/provider.js';
import { jsonResponse as json, type SentRequest as Sent, stubFetch } from '../support/fetch.js';

const ISSUER = 'https://id.example.com';
const SECRET = 'SECRET:client&secret+value=';
const REFRESH_TOKEN = 'SECRET-refresh-token';
const METADATA = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/oauth2/authorize`,
  token_endpoint: `${ISSUER}/oauth2/token`,
  device_authorization_endpoint: `${ISSUER}/oauth2/device`,
  userinfo_endpoint: `${ISSUER}/userinfo`,
  token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
};
const TOKENS = {
  access_token: 'new-access-token',
  token_type: 'bearer',
  expires_in: 3600,
  refresh_token: 'SECRET-rotated-refresh-token',
  scope: 'openid api.read offline_access',
};

/** A provider publishing `metadata` at OpenID discovery, answering tokens with `token`. */
function provider(token: (sent: Sent) => Response = () => json(200, TOKENS), metadata: object = METADATA) {
  return stubFetch((sent) => {
    if (sent.url === `${ISSUER}/.well-known/openid-configuration`) return json(200, metadata);
    if (sent.url.endsWith('/token')) return token(sent);
    if (sent.url.endsWith('/userinfo')) return json(200, { sub: 'u-1', email: 'ana@example.com' });
    return new Response('not found', { status: 404 });
  });
}

function dialect(fetchStub: typeof fetch, config: Record<string, unknown> = {}): ProviderDialect {
  const parsed = oauth2Connection.parse({
    provider: 'oauth2',
    issuer: ISSUER,
    clientId: 'client:1',
    credential: { type: 'secret', secretName: 'generic-secret' },
    scopes: ['openid', 'api.read'],
    ...config,
  });
  const connection: Connection = {
    ...parsed,
    id: 'generic',
    redirectUri: 'https://broker.example.com/api/callback',
    rotateAfterMs: 86_400_000,
  };
  return oauth2Dialect(connection, {
    fetch: fetchStub,
    clock: new ManualClock(Date.UTC(2026, 5, 1)),
    logger: createLogger(() => {}, 'debug'),
    clientSecret: async () => SECRET,
    maxRetries: 0,
  });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('discovery', () => {
  it('looks at OpenID discovery, then RFC 8414 with the path after the well-known segment', () => {
    expect(discoveryUrls('https://id.example.com')).toEqual([
      'https://id.example.com/.well-known/openid-configuration',
      'https://id.example.com/.well-known/oauth-authorization-server',
    ]);
    expect(discoveryUrls('https://id.example.com/tenants/t1/')).toEqual([
      'https://id.example.com/tenants/t1/.well-known/openid-configuration',
      'https://id.example.com/.well-known/oauth-authorization-server/tenants/t1',
    ]);
  });

  it('refuses a document for another issuer, and plain-http endpoints off loopback', () => {
    expect(() => parseProviderMetadata({ ...METADATA, issuer: 'https://evil.example' }, ISSUER)).toThrow(
      /names another issuer/,
    );
    expect(() =>
      parseProviderMetadata({ ...METADATA, token_endpoint: 'http://id.example.com/token' }, ISSUER),
    ).toThrow(/"token_endpoint" must use https/);
    expect(() => parseProviderMetadata({ token_endpoint: 'x' }, ISSUER)).toThrow(/not OAuth 2.0/);
    expect(parseProviderMetadata({ ...METADATA, issuer: `${ISSUER}/` }, ISSUER).tokenEndpoint).toBe(
      `${ISSUER}/oauth2/token`,
    );
  });

  it('falls back to /.well-known/oauth-authorization-server, discovers once, and retries a failed discovery', async () => {
    let fail = true;
    const { fetch: fetchStub, sent } = stubFetch((s) => {
      if (s.url.endsWith('/openid-configuration')) return new Response('', { status: 404 });
      if (s.url.endsWith('/oauth-authorization-server')) {
        if (fail) {
          fail = false;
          return new Response('', { status: 404 });
        }
        return json(200, { issuer: ISSUER, token_endpoint: `${ISSUER}/as/token` });
      }
      if (s.url === `${ISSUER}/as/token`) return json(200, TOKENS);
      return new Response('', { status: 404 });
    });
    const oauth = dialect(fetchStub);
    const err = (await oauth
      .refresh({ refreshToken: REFRESH_TOKEN })
      .catch((e: unknown) => e)) as BrokerError;
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toMatch(/publishes no discovery document.*openid-configuration: HTTP 404/);
    await oauth.refresh({ refreshToken: REFRESH_TOKEN });
    await oauth.refresh({ refreshToken: REFRESH_TOKEN });
    expect(sent.filter((s) => s.url.includes('.well-known')).map((s) => new URL(s.url).pathname)).toEqual([
      '/.well-known/openid-configuration',
      '/.well-known/oauth-authorization-server',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-authorization-server',
    ]);
    expect(sent.filter((s) => s.url.endsWith('/as/token'))).toHaveLength(2);
  });
});

describe('client authentication', () => {
  it('takes the configured method, else basic when offered or unsaid, else post; none for a public client', () => {
    const secret = { credential: { type: 'secret' as const, secretName: 's' } };
    expect(
      chooseClientAuthMethod({ ...secret, tokenEndpointAuthMethod: 'client_secret_post' }, undefined),
    ).toBe('client_secret_post');
    expect(chooseClientAuthMethod(secret, undefined)).toBe('client_secret_basic');
    expect(chooseClientAuthMethod(secret, ['client_secret_post', 'client_secret_basic'])).toBe(
      'client_secret_basic',
    );
    expect(chooseClientAuthMethod(secret, ['client_secret_post'])).toBe('client_secret_post');
    expect(chooseClientAuthMethod({}, ['client_secret_post'])).toBe('none');
    expect(() => chooseClientAuthMethod(secret, ['private_key_jwt'])).toThrow(/accepts only private_key_jwt/);
  });

  it('form-encodes id and secret before Basic (RFC 6749 §2.3.1) and keeps them out of the body', async () => {
    const { fetch: fetchStub, sent } = provider();
    await dialect(fetchStub).refresh({ refreshToken: REFRESH_TOKEN });
    const post = sent.find((s) => s.method === 'POST')!;
    const basic = Buffer.from(post.headers.get('authorization')!.replace(/^Basic /, ''), 'base64').toString();
    expect(basic).toBe('client%3A1:SECRET%3Aclient%26secret%2Bvalue%3D');
    expect(Object.fromEntries(post.form)).toEqual({
      grant_type: 'refresh_token',
      refresh_token: REFRESH_TOKEN,
    });
  });

  it('sends client_id and client_secret in the body for client_secret_post', async () => {
    const { fetch: fetchStub, sent } = provider();
    await dialect(fetchStub, { tokenEndpointAuthMethod: 'client_secret_post' }).refresh({
      refreshToken: REFRESH_TOKEN,
      scopes: ['api.read'],
    });
    const post = sent.find((s) => s.method === 'POST')!;
    expect(post.headers.get('authorization')).toBeNull();
    expect(Object.fromEntries(post.form)).toEqual({
      grant_type: 'refresh_token',
      refresh_token: REFRESH_TOKEN,
      scope: 'api.read',
      client_id: 'client:1',
      client_secret: SECRET,
    });
  });

  it('sends the client_id alone for a public client', async () => {
    const { fetch: fetchStub, sent } = provider();
    await dialect(fetchStub, { credential: undefined }).exchangeCode({
      code: 'SECRET-code',
      codeVerifier: 'verifier',
      redirectUri: 'https://broker.example.com/api/callback',
    });
    const post = sent.find((s) => s.method === 'POST')!;
    expect(post.headers.get('authorization')).toBeNull();
    expect(Object.fromEntries(post.form)).toEqual({
      grant_type: 'authorization_code',
      code: 'SECRET-code',
      redirect_uri: 'https://broker.example.com/api/callback',
      code_verifier: 'verifier',
      client_id: 'client:1',
    });
  });
});

describe('oauth2Dialect', () => {
  it('asks for offline_access with prompt=consent, PKCE S256 and a nonce for openid', async () => {
    const oauth = dialect(provider().fetch, { expectedAccount: 'ana@example.com' });
    const url = new URL(
      await oauth.authorizeUrl({
        state: 's',
        nonce: 'n',
        codeChallenge: 'c',
        redirectUri: 'https://b/api/callback',
      }),
    );
    expect(url.origin + url.pathname).toBe(`${ISSUER}/oauth2/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: 'client:1',
      redirect_uri: 'https://b/api/callback',
      scope: 'openid api.read offline_access',
      state: 's',
      code_challenge: 'c',
      code_challenge_method: 'S256',
      prompt: 'consent',
      nonce: 'n',
      login_hint: 'ana@example.com',
    });
    const plain = dialect(provider().fetch, { scopes: ['api.read', 'offline_access'] });
    const without = new URL(
      await plain.authorizeUrl({
        state: 's',
        nonce: 'n',
        codeChallenge: 'c',
        redirectUri: 'https://b/api/callback',
      }),
    );
    expect(without.searchParams.get('scope')).toBe('api.read offline_access');
    expect(without.searchParams.has('nonce')).toBe(false);
  });

  it('names the account from the id_token, else from UserInfo, else the subject', async () => {
    const oauth = dialect(provider().fetch);
    const base = { accessToken: 'at', tokenType: 'Bearer', expiresIn: 3600 };
    const idToken = (claims: object) => `${b64({ alg: 'RS256' })}.${b64(claims)}.sig`;
    expect(
      await oauth.accountOf({ ...base, idToken: idToken({ sub: 'u-1', preferred_username: 'ana' }) }, 'n'),
    ).toEqual({
      account: 'ana',
      accountId: 'u-1',
    });
    // UserInfo's e-mail without email_verified: named, but flagged so it never matches expectedAccount.
    expect(await oauth.accountOf({ ...base, idToken: idToken({ sub: 'u-1', nonce: 'n' }) }, 'n')).toEqual({
      account: 'ana@example.com',
      accountId: 'u-1',
      emailVerified: false,
    });
    await expect(
      oauth.accountOf({ ...base, idToken: idToken({ sub: 'u-1', nonce: 'other' }) }, 'n'),
    ).rejects.toMatchObject({
      code: 'consent_failed',
    });
    const noUserinfo = dialect(
      stubFetch((s) => (s.url.endsWith('configuration') ? json(200, METADATA) : json(500, {}))).fetch,
    );
    expect(await noUserinfo.accountOf({ ...base, idToken: idToken({ sub: 'u-1' }) })).toEqual({
      account: 'u-1',
      accountId: 'u-1',
    });
  });

  it('tells a provider without a device endpoint from an unconfigured one', async () => {
    const { device_authorization_endpoint: _, ...noDevice } = METADATA;
    const oauth = dialect(provider(undefined, noDevice).fetch, { flow: 'device_code' });
    await expect(oauth.startDeviceAuthorization!()).rejects.toMatchObject({
      code: 'client_misconfigured',
      message: expect.stringMatching(/no device authorization endpoint.*Set "deviceAuthorizationEndpoint"/),
    });
  });

  it('starts device authorization with the client authenticated', async () => {
    const { fetch: fetchStub, sent } = stubFetch((s) => {
      if (s.url.endsWith('/openid-configuration')) return json(200, METADATA);
      return json(200, {
        device_code: 'SECRET-dc',
        user_code: 'ABCD-EFGH',
        verification_uri: `${ISSUER}/device`,
        expires_in: 600,
      });
    });
    const started = await dialect(fetchStub, { flow: 'device_code' }).startDeviceAuthorization!();
    expect(started).toMatchObject({ userCode: 'ABCD-EFGH', interval: 5, expiresIn: 600 });
    const post = sent.find((s) => s.method === 'POST')!;
    expect(post.url).toBe(`${ISSUER}/oauth2/device`);
    expect(post.headers.get('authorization')).toMatch(/^Basic /);
    expect(Object.fromEntries(post.form)).toEqual({ scope: 'openid api.read offline_access' });
  });
});

describe('classifyOAuthError', () => {
  const classify = (status: number, error?: string, otherScope = false) =>
    classifyOAuthError(
      { status, oauthError: error ? { error, errorDescription: 'SECRET description' } : undefined },
      {
        connectionId: 'generic',
        otherScope: otherScope ? 'https://a.example.com/x' : undefined,
        secretName: 'generic-secret',
      },
    );

  it.each([
    [400, 'invalid_grant', false, 'consent_required'],
    [400, 'consent_required', false, 'consent_required'],
    [400, 'consent_required', true, 'invalid_request'],
    [401, 'invalid_client', false, 'client_misconfigured'],
    [400, 'unauthorized_client', false, 'client_misconfigured'],
    [400, 'invalid_scope', true, 'invalid_request'],
    [400, 'invalid_scope', false, 'client_misconfigured'],
    [401, undefined, false, 'client_misconfigured'],
    [404, undefined, false, 'client_misconfigured'],
    [400, 'temporarily_unavailable', false, 'upstream_unavailable'],
    [503, undefined, false, 'upstream_unavailable'],
    [400, 'something_new', false, 'upstream_unavailable'],
  ])('HTTP %s %s (other scope: %s) → %s', (status, error, otherScope, code) => {
    const err = classify(status, error, otherScope);
    expect(err).toBeInstanceOf(BrokerError);
    expect(err.code).toBe(code);
    expect(err.message).not.toContain('SECRET');
  });

  it('tells how to fix a refused client secret', () => {
    expect(classify(401, 'invalid_client').message).toContain('broker secrets set generic-secret');
    expect(classify(400, 'invalid_grant').message).toContain('/api/start?connection=generic');
  });
});

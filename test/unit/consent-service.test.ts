import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CONSENT_TTL_MS, consentCookieName } from '../../src/lib/consent/consent-service.js';
import { testConnection } from '../fakes/connections.js';
import { providerError } from '../fakes/fake-provider.js';
import { services } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

// The token test below asks for another resource, which an operator allowed.
const uploader = testConnection('uploader', { allowedScopes: ['https://example.com/other'] });
const support = testConnection('support', { expectedAccount: 'support@contoso.com' });
const outlook = testConnection('outlook', {
  flow: 'device_code',
  credential: undefined,
  tenant: 'consumers',
});

/** ConsentService, authorization code flow (RFC 6749 §4.1 with PKCE): `/api/start` and `/api/callback`. */
describe('ConsentService (authorization code)', () => {
  const setup = () => services([uploader, support, outlook]);

  /** Starts consent for `id` and returns what the browser would carry back to the callback. */
  const begin = async (world: ReturnType<typeof setup>, id = 'uploader') => {
    const started = await world.consent.start(id);
    if (started.flow !== 'authorization_code') throw new Error('expected the authorization code flow');
    const url = new URL(started.location);
    const state = url.searchParams.get('state')!;
    const cookies = new Map([[started.cookie.name, started.cookie.value]]);
    return { started, url, state, cookies };
  };

  it('start sends the browser to the provider with state, nonce and a PKCE challenge, sealed in a cookie', async () => {
    const world = setup();
    const { started, url, state, cookies } = await begin(world);
    const nonce = url.searchParams.get('nonce')!;
    const challenge = url.searchParams.get('code_challenge')!;
    expect(state).toMatch(/^[\w-]{20,}$/);
    expect(nonce).toMatch(/^[\w-]{20,}$/);
    expect(nonce).not.toBe(state);
    expect(url.searchParams.get('redirect_uri')).toBe(uploader.redirectUri);
    expect(started.cookie.name).toBe(consentCookieName(state));
    expect(started.cookie.maxAgeSeconds).toBe(CONSENT_TTL_MS / 1000);
    // Another start is another attempt.
    expect((await begin(world)).state).not.toBe(state);

    await world.consent.callback({ code: 'auth-code', state }, cookies);
    const { codeVerifier } = world.provider.exchanges[0]!;
    expect(createHash('sha256').update(codeVerifier).digest('base64url')).toBe(challenge);
    expect(started.cookie.value).not.toContain(codeVerifier);
    expect(started.cookie.value).not.toContain(state);
    expect(world.provider.nonces).toEqual([nonce]);
  });

  it('a good callback exchanges the code, stores the grant and primes the token cache', async () => {
    const world = setup();
    const { state, cookies } = await begin(world);
    const result = await world.consent.callback({ code: 'auth-code', state }, cookies);
    expect(result).toEqual({ connectionId: 'uploader', account: 'ana@contoso.com', tenant: 'tenant-1' });
    expect(world.provider.exchanges).toMatchObject([
      { code: 'auth-code', redirectUri: uploader.redirectUri },
    ]);
    const stored = await world.storedGrant('uploader');
    expect(stored?.value).toBe('rt-1');
    expect(stored?.tags).toMatchObject({ status: 'connected', account: 'ana@contoso.com' });
    expect((await world.tokens.getAccessToken('uploader')).accessToken).toBe('at-1');
    expect(world.provider.refreshes).toHaveLength(0);
  });

  it('a new consent replaces the cached tokens of the old grant', async () => {
    const world = setup();
    await world.seedGrant('uploader', 'rt-old');
    const old = await world.tokens.getAccessToken('uploader', ['https://example.com/other']);
    const { state, cookies } = await begin(world);
    await world.consent.callback({ code: 'auth-code', state }, cookies);
    const after = await world.tokens.getAccessToken('uploader', ['https://example.com/other']);
    expect(after.accessToken).not.toBe(old.accessToken);
  });

  describe('refuses the callback with consent_failed, without asking the provider', () => {
    const refused = async (
      tamper: (
        attempt: Awaited<ReturnType<typeof begin>>,
        world: ReturnType<typeof setup>,
      ) => {
        state?: string;
        cookies: Map<string, string>;
      },
    ) => {
      const world = setup();
      const attempt = await begin(world);
      const { state, cookies } = tamper(attempt, world);
      const err = await rejection(world.consent.callback({ code: 'auth-code', state }, cookies));
      expect(err.code).toBe('consent_failed');
      expect(err.status).toBe(400);
      expect(world.provider.exchanges).toHaveLength(0);
      expect(await world.storedGrant('uploader')).toBeUndefined();
      return err;
    };

    it('when the state is missing', async () => {
      await refused(({ cookies }) => ({ cookies }));
    });

    it('when no cookie belongs to the state', async () => {
      await refused(({ state }) => ({ state, cookies: new Map() }));
    });

    it('when the state is not the one sealed in the cookie', async () => {
      await refused(({ started, state }) => ({
        state: `${state}x`,
        cookies: new Map([[consentCookieName(`${state}x`), started.cookie.value]]),
      }));
    });

    it('when the cookie was forged', async () => {
      await refused(({ started, state }) => ({
        state,
        cookies: new Map([[started.cookie.name, `${started.cookie.value.slice(0, -4)}AAAA`]]),
      }));
    });

    it('when the attempt is older than 10 minutes', async () => {
      const err = await refused((attempt, world) => {
        world.clock.advance(CONSENT_TTL_MS + 1000);
        return attempt;
      });
      expect(err.message).toMatch(/expired/);
    });
  });

  it('reports the provider refusing the sign-in with its error and AADSTS number', async () => {
    const world = setup();
    const { state, cookies } = await begin(world);
    const err = await rejection(
      world.consent.callback(
        {
          state,
          error: 'access_denied',
          errorDescription: 'AADSTS65004: User declined to consent to access the app.',
        },
        cookies,
      ),
    );
    expect(err.code).toBe('consent_failed');
    expect(err.providerError).toEqual({ error: 'access_denied', aadsts: 65004 });
    expect(err.message).toContain('/api/start?connection=uploader');
    expect(world.provider.exchanges).toHaveLength(0);
  });

  it('turns a dead authorization code into consent_failed, not a dead grant', async () => {
    const world = setup();
    const { state, cookies } = await begin(world);
    world.provider.answer('uploader', providerError('consent_required', 'invalid_grant', 54005));
    const err = await rejection(world.consent.callback({ code: 'used-code', state }, cookies));
    expect(err.code).toBe('consent_failed');
    expect(err.providerError).toMatchObject({ error: 'invalid_grant', aadsts: 54005 });
    expect(await world.storedGrant('uploader')).toBeUndefined();
  });

  it('refuses an account other than expectedAccount and stores nothing', async () => {
    const world = setup();
    const { state, cookies } = await begin(world, 'support');
    const err = await rejection(world.consent.callback({ code: 'auth-code', state }, cookies));
    expect(err.code).toBe('account_mismatch');
    expect(await world.storedGrant('support')).toBeUndefined();
  });

  it('answers unknown_connection for an id that is not configured', async () => {
    const err = await rejection(setup().consent.start('nope'));
    expect(err.code).toBe('unknown_connection');
  });

  it('hands a device_code connection to the device flow', async () => {
    const world = setup();
    const started = await world.consent.start('outlook');
    expect(started.flow).toBe('device_code');
    expect(world.provider.authorizations).toHaveLength(0);
    expect(world.provider.deviceStarts).toEqual(['outlook']);
  });
});

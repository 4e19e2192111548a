import { describe, expect, it } from 'vitest';
import { MIN_TOKEN_LIFE_MS } from '../../src/lib/tokens/token-service.js';
import { testConnection } from '../fakes/connections.js';
import { providerError } from '../fakes/fake-provider.js';
import { services, settle } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** TokenService (DESIGN.md, "Token vending and rotation") on the real grant service, over fakes. */
describe('TokenService', () => {
  const setup = async () => {
    // The scopes these tests ask for besides the connection's own are allowed, as an operator would.
    const mail = testConnection('mail', {
      allowedScopes: ['a', 'b', 'https://outlook.office.com/IMAP.AccessAsUser.All'],
    });
    const world = services([mail, testConnection('files')], { refreshAheadMs: 5 * MINUTE });
    await world.seedGrant('mail', 'rt-seed');
    await world.seedGrant('files', 'rt-files');
    return world;
  };

  it('serves a cached token without asking the provider again', async () => {
    const { tokens, provider, clock } = await setup();
    const first = await tokens.getAccessToken('mail');
    clock.advance(30 * MINUTE);
    const second = await tokens.getAccessToken('mail');
    expect(second.accessToken).toBe(first.accessToken);
    expect(provider.refreshes).toHaveLength(1);
  });

  it('inside the refresh-ahead window serves the cached token while one background refresh runs', async () => {
    const { tokens, provider, clock } = await setup();
    const first = await tokens.getAccessToken('mail');
    clock.advance(HOUR - 4 * MINUTE);
    const release = provider.hold();
    const served = await Promise.all([tokens.getAccessToken('mail'), tokens.getAccessToken('mail')]);
    expect(served.map((t) => t.accessToken)).toEqual([first.accessToken, first.accessToken]);
    await settle();
    expect(provider.refreshes).toHaveLength(2);
    expect(provider.inFlight).toBe(1);
    release();
    await settle();
    const next = await tokens.getAccessToken('mail');
    expect(next.accessToken).not.toBe(first.accessToken);
    expect(next.expiresAt).toBe(clock.now() + HOUR);
    expect(provider.refreshes).toHaveLength(2);
  });

  it('makes callers wait for a new token when less than 30 s is left, and never hands out less', async () => {
    const { tokens, provider, clock } = await setup();
    const first = await tokens.getAccessToken('mail');
    clock.advance(HOUR - 20_000);
    const release = provider.hold();
    let answered = false;
    const waiting = tokens.getAccessToken('mail').then((t) => {
      answered = true;
      return t;
    });
    await settle();
    expect(answered).toBe(false);
    release();
    const fresh = await waiting;
    expect(fresh.accessToken).not.toBe(first.accessToken);
    expect(fresh.expiresAt - clock.now()).toBeGreaterThan(MIN_TOKEN_LIFE_MS);
  });

  it('redeems once for 50 concurrent callers of one key', async () => {
    const { tokens, provider } = await setup();
    const release = provider.hold();
    const calls = Array.from({ length: 50 }, () => tokens.getAccessToken('mail'));
    await settle();
    release();
    const answers = await Promise.all(calls);
    expect(new Set(answers.map((t) => t.accessToken)).size).toBe(1);
    expect(provider.refreshes).toHaveLength(1);
  });

  it('treats scope lists as sets: `a b` and `b a` share one cached token', async () => {
    const { tokens, provider } = await setup();
    const ab = await tokens.getAccessToken('mail', ['a', 'b']);
    const ba = await tokens.getAccessToken('mail', ['b', 'a']);
    const own = await tokens.getAccessToken('mail');
    expect(ba.accessToken).toBe(ab.accessToken);
    expect(own.accessToken).not.toBe(ab.accessToken);
    expect(provider.refreshes.map((r) => r.scopes)).toEqual([['a', 'b'], undefined]);
  });

  it('keeps the own-scope token cached when a connection is asked for other scope sets', async () => {
    // The own-scope token is held on its own until a second set is asked for, then joins the sets.
    const { tokens, provider } = await setup();
    const own = await tokens.getAccessToken('mail');
    const a = await tokens.getAccessToken('mail', ['a']);
    const b = await tokens.getAccessToken('mail', ['b']);
    expect(await tokens.getAccessToken('mail')).toMatchObject({
      accessToken: own.accessToken,
      served: 'cache',
    });
    expect((await tokens.getAccessToken('mail', ['a'])).accessToken).toBe(a.accessToken);
    expect((await tokens.getAccessToken('mail', ['b'])).accessToken).toBe(b.accessToken);
    expect(provider.refreshes.map((r) => r.scopes)).toEqual([undefined, ['a'], ['b']]);
  });

  it('serves a set asked for before the own-scope token, and the own one after', async () => {
    const { tokens, provider } = await setup();
    const a = await tokens.getAccessToken('mail', ['a']);
    const own = await tokens.getAccessToken('mail');
    expect((await tokens.getAccessToken('mail', ['a'])).accessToken).toBe(a.accessToken);
    expect((await tokens.getAccessToken('mail')).accessToken).toBe(own.accessToken);
    expect(provider.refreshes.map((r) => r.scopes)).toEqual([['a'], undefined]);
  });

  it('drops every cached token of a connection whose grant turns out dead, and only of that one', async () => {
    const { tokens, provider, clock } = await setup();
    const imapScope = ['https://outlook.office.com/IMAP.AccessAsUser.All'];
    await tokens.getAccessToken('mail');
    clock.advance(30 * MINUTE);
    await tokens.getAccessToken('mail', imapScope);
    const files = await tokens.getAccessToken('files');
    clock.advance(30 * MINUTE);
    provider.answer('mail', providerError('consent_required', 'invalid_grant', 700082));
    const err = await rejection(tokens.getAccessToken('mail'));
    expect(err.code).toBe('consent_required');
    const asked = provider.refreshes.length;
    // The IMAP token still has 30 minutes to live, but it goes with the grant; other connections keep theirs.
    const imap = await rejection(tokens.getAccessToken('mail', imapScope));
    expect(imap.code).toBe('consent_required');
    expect(provider.refreshes).toHaveLength(asked);
    expect((await tokens.getAccessToken('files')).accessToken).toBe(files.accessToken);
  });

  it('rotate refreshes the grant and primes the cache with the token it minted', async () => {
    const { tokens, provider, catalog, storedGrant } = await setup();
    const tags = await tokens.rotate(await catalog.get('mail'));
    expect(tags.status).toBe('connected');
    expect((await storedGrant('mail'))?.value).toBe('rt-1');
    const vended = await tokens.getAccessToken('mail');
    expect(vended.accessToken).toBe('at-1');
    expect(vended.account).toBe('ana@contoso.com');
    expect(provider.refreshes).toHaveLength(1);
  });

  it('answers unknown_connection for an id that is not configured, without asking anyone', async () => {
    const { tokens, provider } = await setup();
    const err = await rejection(tokens.getAccessToken('nope'));
    expect(err.code).toBe('unknown_connection');
    expect(err.status).toBe(404);
    expect(provider.refreshes).toHaveLength(0);
  });

  it('answers consent_required for a connection never connected', async () => {
    const { tokens, provider } = services([testConnection('fresh')]);
    const err = await rejection(tokens.getAccessToken('fresh'));
    expect(err.code).toBe('consent_required');
    expect(err.message).toContain('/api/start?connection=fresh');
    expect(provider.refreshes).toHaveLength(0);
  });
});

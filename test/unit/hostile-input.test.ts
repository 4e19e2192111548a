import { describe, expect, it } from 'vitest';
import { parseConnections } from '../../src/lib/config/load.js';
import { consentCookieName } from '../../src/lib/consent/consent-service.js';
import { seal } from '../../src/lib/crypto/seal.js';
import { parseOAuthError } from '../../src/lib/oauth/index.js';
import { SEAL_KEY_SECRET } from '../../src/lib/store/secret-store.js';
import { testConnection } from '../fakes/connections.js';
import { services } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

/** Connection `support`: an Entra connection with `fields` on top, as connections.json would have it. */
function parseSupport(fields: Record<string, unknown>) {
  const support = { provider: 'entra', clientId: 'abc', scopes: ['User.Read'], ...fields };
  return parseConnections(JSON.stringify({ connections: { support } }), 'connections.json', {
    publicUrl: 'https://broker.example.com',
  });
}

/** DESIGN.md, "Hostile input rules" and "Configuration": what the broker refuses to take in. */
describe('configuration', () => {
  it('refuses the secret names the broker keeps for itself (rt-*, broker-*), in any case', () => {
    for (const secretName of ['rt-support', 'broker-seal-key', 'RT-support', 'Broker-x']) {
      expect(() => parseSupport({ credential: { type: 'secret', secretName } })).toThrow(
        /connection "support": field "credential.secretName": names beginning "rt-" or "broker-" are reserved/,
      );
    }
    expect(
      parseSupport({ credential: { type: 'secret', secretName: 'art-secret' } }).get('support'),
    ).toBeTruthy();
  });

  it('takes as tenant only the three keywords, a GUID or a DNS name', () => {
    const ok = [
      'common',
      'organizations',
      'consumers',
      'Common',
      '72f988bf-86f1-41af-91ab-2d7cd011db47',
      'contoso.onmicrosoft.com',
      'contoso.com',
      'a-b.example.org',
    ];
    for (const tenant of ok) expect(parseSupport({ tenant }).get('support')).toBeTruthy();
    const bad = [
      '..',
      '.',
      '-',
      'contoso',
      'contoso..com',
      '-contoso.com',
      'contoso-.com',
      'a.b.',
      '.a.b',
      `${'a'.repeat(64)}.com`,
      'common/oauth2',
      '72f988bf86f141af91ab2d7cd011db47x',
    ];
    for (const tenant of bad) {
      expect(() => parseSupport({ tenant }), tenant).toThrow(/field "tenant": must be common/);
    }
  });
});

describe('AADSTS numbers', () => {
  it('are at most 9 digits, from error_codes and from error_description', () => {
    const body = (o: object) => JSON.stringify({ error: 'invalid_grant', ...o });
    expect(parseOAuthError(body({ error_codes: [700082] }))?.aadsts).toBe(700082);
    expect(parseOAuthError(body({ error_codes: [999999999] }))?.aadsts).toBe(999999999);
    expect(parseOAuthError(body({ error_codes: [1000000000] }))?.aadsts).toBeUndefined();
    expect(parseOAuthError(body({ error_codes: [-1] }))?.aadsts).toBeUndefined();
    expect(parseOAuthError(body({ error_codes: [Number.MAX_SAFE_INTEGER] }))?.aadsts).toBeUndefined();
    expect(parseOAuthError(body({ error_description: 'AADSTS123456789: x' }))?.aadsts).toBe(123456789);
    expect(
      parseOAuthError(body({ error_description: `AADSTS${'9'.repeat(400)}: x` }))?.aadsts,
    ).toBeUndefined();
    expect(parseOAuthError(body({ error_description: 'AADSTS1234567890: x' }))?.aadsts).toBeUndefined();
  });
});

describe('the consent callback', () => {
  const setup = async () => {
    const world = services([testConnection('uploader')]);
    const started = await world.consent.start('uploader');
    if (started.flow !== 'authorization_code') throw new Error('expected the authorization code flow');
    const state = new URL(started.location).searchParams.get('state') as string;
    const cookies = new Map([[started.cookie.name, started.cookie.value]]);
    return { ...world, state, cookies };
  };

  it('refuses a state sealed with the right key but of the wrong shape (the zod schema, not a guard)', async () => {
    const { consent, store, clock } = await setup();
    const key = Buffer.from((await store.getSecret(SEAL_KEY_SECRET))!.value, 'base64');
    const expiresAt = clock.now() + 60_000;
    const shapes: unknown[] = [
      { connection: 'uploader', state: 'st', nonce: 'n' }, // no verifier
      { connection: 'uploader', state: 'st', nonce: 'n', verifier: 7 },
      { c: 'uploader', s: 'st', n: 'n', v: 'v' }, // the one-letter keys of an older deploy
      'st',
    ];
    for (const payload of shapes) {
      const cookies = new Map([[consentCookieName('st'), seal(key, 'consent', payload, expiresAt)]]);
      const err = await rejection(consent.callback({ state: 'st', code: 'code' }, cookies));
      expect(err).toMatchObject({ code: 'consent_failed' });
    }
  });

  it("shows the provider's error only within RFC 6749's charset and 64 characters", async () => {
    const cases: [string, string][] = [
      ['access_denied', 'access_denied'],
      ['a'.repeat(64), 'a'.repeat(64)],
      ['a'.repeat(65), 'invalid_error'],
      // Within the charset: shown, and escaped wherever it is shown as HTML.
      ['<script>alert(1)</script>', '<script>alert(1)</script>'],
      ['say "hi"', 'invalid_error'],
      ['back\\slash', 'invalid_error'],
      ['new\nline', 'invalid_error'],
      ['caf\u00e9', 'invalid_error'],
      ['', 'invalid_error'],
    ];
    for (const [error, shown] of cases) {
      const { consent, state, cookies } = await setup();
      const err = await rejection(consent.callback({ state, error }, cookies));
      expect(err.code).toBe('consent_failed');
      expect(err.providerError?.error, JSON.stringify(error)).toBe(shown);
      if (shown === 'invalid_error') expect(err.message).not.toContain(error || '\u0000');
    }
  });

  it('takes an AADSTS number of at most 9 digits from error_description', async () => {
    for (const [description, aadsts] of [
      ['AADSTS65001: consent', 65001],
      ['AADSTS999999999: x', 999999999],
      ['AADSTS1234567890: x', undefined],
    ] as const) {
      const { consent, state, cookies } = await setup();
      const err = await rejection(
        consent.callback({ state, error: 'access_denied', errorDescription: description }, cookies),
      );
      expect(err.providerError?.aadsts).toBe(aadsts);
    }
  });

  it('accepts a consent state once', async () => {
    const { consent, state, cookies, storedGrant, clock } = await setup();
    await consent.callback({ code: 'code-1', state }, cookies);
    const stored = await storedGrant('uploader');
    const err = await rejection(consent.callback({ code: 'code-2', state }, cookies));
    expect(err.code).toBe('consent_failed');
    expect(err.message).toContain('accepted once');
    expect(await storedGrant('uploader')).toEqual(stored);
    // Still refused until it would have expired anyway (then the seal refuses it).
    clock.advance(9 * 60_000);
    expect((await rejection(consent.callback({ code: 'code-3', state }, cookies))).message).toContain(
      'accepted once',
    );
    clock.advance(2 * 60_000);
    expect((await rejection(consent.callback({ code: 'code-4', state }, cookies))).message).toContain(
      'invalid or expired',
    );
  });
});

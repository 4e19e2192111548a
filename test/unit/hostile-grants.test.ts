import { describe, expect, it } from 'vitest';
import { refreshTokenSecretName } from '../../src/lib/store/secret-store.js';
import { testConnection } from '../fakes/connections.js';
import { providerError } from '../fakes/fake-provider.js';
import { services } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const mail = testConnection('mail', { allowedScopes: [IMAP] });

/** The failures that mean "this grant cannot give that" (interaction, consent, dead grant). */
const consentFailures = [
  providerError('consent_required', 'interaction_required', 50076),
  providerError('consent_required', 'interaction_required', 53003),
  providerError('consent_required', 'invalid_grant', 65001),
  providerError('consent_required', 'invalid_grant', 70043),
  providerError('consent_required', 'invalid_grant'),
  providerError('consent_required', 'access_denied'),
];

/** DESIGN.md, "Hostile input rules": a bad scope must not kill a good grant. */
describe('a consent failure for another scope', () => {
  const setup = async () => {
    const world = services([mail]);
    await world.seedGrant('mail', 'rt-seed');
    const versions = () => world.store.listVersions(refreshTokenSecretName('mail'));
    return { ...world, versions };
  };

  for (const failure of consentFailures) {
    const name = `${failure.providerError?.error}${failure.providerError?.aadsts ? ` AADSTS${failure.providerError.aadsts}` : ''}`;
    it(`(${name}) answers its error and leaves the stored grant alone`, async () => {
      const { tokens, provider, storedGrant, versions } = await setup();
      const own = await tokens.getAccessToken('mail');
      const before = await storedGrant('mail');
      provider.answer('mail', failure);
      const err = await rejection(tokens.getAccessToken('mail', [IMAP]));
      expect(err.code).toBe('consent_required');
      expect(err.providerError).toMatchObject({ error: failure.providerError?.error });
      expect(await storedGrant('mail')).toEqual(before);
      expect(await versions()).toHaveLength(2);
      // The connection's own token is still served from the cache, and a refresh still works.
      expect((await tokens.getAccessToken('mail')).accessToken).toBe(own.accessToken);
      await tokens.getAccessToken('mail', [IMAP.toUpperCase()]);
      expect(provider.refreshes.at(-1)?.scopes).toEqual([IMAP.toUpperCase()]);
      expect((await storedGrant('mail'))?.tags.status).toBe('connected');
    });
  }

  it('still marks the grant dead when the refresh for its own scopes fails', async () => {
    const { tokens, provider, storedGrant } = await setup();
    provider.answer('mail', providerError('consent_required', 'invalid_grant', 700082));
    const err = await rejection(tokens.getAccessToken('mail'));
    expect(err.code).toBe('consent_required');
    expect((await storedGrant('mail'))?.tags).toMatchObject({
      status: 'needs_consent',
      lastError: 'invalid_grant AADSTS700082',
    });
  });

  it('counts a request naming only its own scopes (any case) as its own', async () => {
    const { grants, provider, storedGrant } = await setup();
    provider.answer('mail', providerError('consent_required', 'invalid_grant', 700082));
    await rejection(grants.redeem(mail, ['HTTPS://graph.microsoft.com/mail.read']));
    expect((await storedGrant('mail'))?.tags.status).toBe('needs_consent');
  });
});

/** DESIGN.md, "Hostile input rules": the token cache is bounded and case-insensitive. */
describe('the token cache under a caller cycling scopes', () => {
  const many = Array.from({ length: 40 }, (_, i) => `api://resource-${i}/.default`);
  const setup = async () => {
    const world = services([testConnection('mail', { allowedScopes: [IMAP, ...many] })]);
    await world.seedGrant('mail', 'rt-seed');
    return world;
  };

  it('shares one entry (and one refresh) among spellings of the same scope set', async () => {
    const { tokens, provider, versions } = await setup().then(async (w) => ({
      ...w,
      versions: () => w.store.listVersions(refreshTokenSecretName('mail')),
    }));
    const spellings = [
      IMAP,
      IMAP.toUpperCase(),
      IMAP.toLowerCase(),
      'https://Outlook.Office.com/imap.accessasuser.all',
    ];
    for (const s of spellings) await tokens.getAccessToken('mail', [s]);
    await tokens.getAccessToken('mail', [IMAP, IMAP.toLowerCase()]);
    expect(provider.refreshes).toHaveLength(1);
    expect(await versions()).toHaveLength(2);
  });

  it('keeps at most 32 scope sets per connection, dropping the least recently used', async () => {
    const { tokens, provider } = await setup();
    for (const s of many.slice(0, 32)) await tokens.getAccessToken('mail', [s]);
    expect(provider.refreshes).toHaveLength(32);
    // Touch the first: it becomes the most recently used; the second is now the oldest.
    await tokens.getAccessToken('mail', [many[0] as string]);
    expect(provider.refreshes).toHaveLength(32);
    await tokens.getAccessToken('mail', [many[32] as string]);
    expect(provider.refreshes).toHaveLength(33);
    await tokens.getAccessToken('mail', [many[0] as string]);
    expect(provider.refreshes).toHaveLength(33);
    await tokens.getAccessToken('mail', [many[1] as string]);
    expect(provider.refreshes).toHaveLength(34);
  });
});

import { describe, expect, it } from 'vitest';
import { ENTRA_INACTIVITY_MS } from '../../src/lib/health/deadlines.js';
import { acsTestConnection, testConnection } from '../fakes/connections.js';
import { DAY_MS, services, T0 } from '../fakes/services.js';

const iso = (ms: number) => new Date(ms).toISOString();

const intranet = acsTestConnection('intranet');

/** StatusService: every connection's health and deadlines (DESIGN.md, `GET /api/status`). */
describe('StatusService', () => {
  const setup = () =>
    services(
      [
        testConnection('mail', { credential: undefined }),
        testConnection('dead', { credential: undefined }),
        testConnection('never', { credential: undefined, flow: 'device_code' }),
        intranet,
      ],
      { warnBeforeMs: 14 * DAY_MS },
    );

  it('reports each connection as connected, needs_consent or not_connected, with its tags', async () => {
    const { status, seedGrant } = setup();
    await seedGrant('mail', 'rt-mail', { account: 'ana@contoso.com', tenant: 't1' });
    await seedGrant('dead', 'rt-dead', { status: 'needs_consent', lastError: 'invalid_grant AADSTS700082' });
    const health = await status.health();
    expect(health.map((h) => [h.id, h.provider, h.flow, h.status])).toEqual([
      ['mail', 'entra', 'authorization_code', 'connected'],
      ['dead', 'entra', 'authorization_code', 'needs_consent'],
      ['never', 'entra', 'device_code', 'not_connected'],
      ['intranet', 'sharepoint-acs', 'authorization_code', 'not_connected'],
    ]);
    expect(health[0]).toMatchObject({
      account: 'ana@contoso.com',
      consentedAt: iso(T0),
      refreshedAt: iso(T0),
      lastError: null,
    });
    expect(health[1]?.lastError).toBe('invalid_grant AADSTS700082');
    expect(health[2]).toMatchObject({
      account: null,
      consentedAt: null,
      refreshedAt: null,
      lastError: null,
      deadlines: [],
      nextDeadline: null,
      warning: false,
    });
  });

  it('forecasts Entra inactivity 90 days after the last refresh, for connected grants only', async () => {
    const { status, seedGrant, clock } = setup();
    clock.advance(5 * DAY_MS);
    await seedGrant('mail', 'rt-mail', { consentedAt: iso(T0) });
    await seedGrant('dead', 'rt-dead', { status: 'needs_consent' });
    const [mail, dead] = await status.health();
    expect(mail?.deadlines).toEqual([
      { kind: 'refresh_token_inactivity', at: iso(T0 + 5 * DAY_MS + ENTRA_INACTIVITY_MS) },
    ]);
    expect(dead?.deadlines).toEqual([]);
  });

  it("forecasts ACS's hard expiry and the client secret's expiry, earliest first, and none for inactivity", async () => {
    const { status, seedGrant, store } = setup();
    const hard = iso(T0 + 180 * DAY_MS);
    await seedGrant('intranet', 'rt-acs', { hardExpiresAt: hard });
    await store.setSecret('SP-Secret', 'client-secret', { expiresOn: new Date(T0 + 60 * DAY_MS) });
    const intranetHealth = (await status.health()).find((h) => h.id === 'intranet');
    expect(intranetHealth?.hardExpiresAt).toBe(hard);
    expect(intranetHealth?.deadlines).toEqual([
      { kind: 'client_secret_expiry', at: iso(T0 + 60 * DAY_MS) },
      { kind: 'hard_expiry', at: hard },
    ]);
    expect(intranetHealth?.nextDeadline).toEqual({ kind: 'client_secret_expiry', at: iso(T0 + 60 * DAY_MS) });
  });

  it('warns from warnBeforeMs before the next deadline on, and after it has passed', async () => {
    const { status, seedGrant, clock } = setup();
    await seedGrant('mail', 'rt-mail');
    const inactivity = T0 + ENTRA_INACTIVITY_MS;
    const warningAt = async (now: number) => {
      clock.set(now);
      return (await status.health())[0]?.warning;
    };
    expect(await warningAt(inactivity - 15 * DAY_MS)).toBe(false);
    expect(await warningAt(inactivity - 14 * DAY_MS)).toBe(true);
    expect(await warningAt(inactivity + DAY_MS)).toBe(true);
  });

  it('reads tags and expiry dates only: a snapshot never holds a secret value', async () => {
    const { status, seedGrant, store } = setup();
    await seedGrant('mail', 'rt-mail-SECRET');
    await store.setSecret('sp-secret', 'client-SECRET', { expiresOn: new Date(T0 + DAY_MS) });
    expect(JSON.stringify(await status.health())).not.toContain('SECRET');
  });
});

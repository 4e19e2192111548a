import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { decodeJwtClaims } from '../../src/lib/oauth/index.js';
import { addCalendarMonths } from '../../src/lib/providers/sharepoint-acs.js';
import { consent } from '../fakes/consent-client.js';
import { type AcsFake, startAcsSimulator, trustIt } from '../fakes/sharepoint-acs-simulator.js';
import type { Problem, TokenBody } from '../support/http-types.js';
import { CLIENT_ID, findLeaks, type Stack, startStack } from './harness.js';

const DAY = 86_400_000;

/**
 * What a caller of the broker does, whatever the connection's provider: a token from `/api/token`,
 * then SharePoint's REST API with it.
 */
async function callSharePoint(stack: Stack, site: AcsFake, connection: string) {
  const res = await stack.api(`/api/token?connection=${connection}`);
  if (res.status !== 200) return { status: res.status, problem: (await res.json()) as Problem };
  const token = (await res.json()) as TokenBody;
  const web = await site.fetch(`${site.siteUrl}/_api/web`, {
    headers: { authorization: `Bearer ${token.access_token}`, accept: 'application/json;odata=nometadata' },
  });
  return { status: web.status, web: (await web.json()) as { Title: string }, token };
}

async function health(stack: Stack, id: string): Promise<ConnectionHealth> {
  const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
  return body.connections.find((c) => c.id === id)!;
}

/** A SharePoint deployment where ACS low trust still answers: consent, token, refresh, 6-month end. */
describe('sharepoint-acs: the add-in flow through ACS', () => {
  let acs: AcsFake;
  let stack: Stack;
  const key = () => stack.local.functionKey;

  beforeAll(async () => {
    acs = await startAcsSimulator({
      clientId: CLIENT_ID,
      now: () => (stack ? stack.clock.now() : Date.now()),
    });
    stack = await startStack({
      connections: {
        intranet: {
          provider: 'sharepoint-acs',
          siteUrl: acs.siteUrl,
          accessControlUrl: acs.accessControlUrl,
          scopes: ['AllSites.Manage'],
          // The policy lets it through, so what answers is ACS itself.
          allowedScopes: ['https://graph.microsoft.com/User.Read'],
        },
      },
    });
    acs.sim.setClientSecret(stack.clientSecret);
    acs.sim.registerRedirectUri(`${stack.url}/api/callback`);
  });
  afterAll(async () => {
    await stack.close();
    await acs.close();
  });
  afterEach(async () => expect(await findLeaks(stack, acs.sim.issuedSecrets())).toEqual([]));

  it('consents through "Trust It" without PKCE, learns the account, and sets hardExpiresAt to consent + 6 months', async () => {
    const outcome = await trustIt(stack.url, key(), 'intranet', { account: 'clerk@city.example' });
    expect(outcome.status).toBe(200);
    expect(outcome.body).toContain('clerk@city.example');
    expect(acs.sim.stats.pkceParams).toBe(0);
    expect(acs.sim.stats.byGrant.authorization_code).toBe(1);

    const intranet = await health(stack, 'intranet');
    expect(intranet).toMatchObject({
      provider: 'sharepoint-acs',
      status: 'connected',
      account: 'clerk@city.example',
    });
    const sixMonths = addCalendarMonths(new Date(intranet.consentedAt!), 6).toISOString();
    expect(intranet.hardExpiresAt).toBe(sixMonths);
    expect(intranet.deadlines).toContainEqual({ kind: 'hard_expiry', at: sixMonths });
    // No 90-day inactivity forecast: that is Entra's rule, not ACS's.
    expect(intranet.deadlines.map((d) => d.kind)).not.toContain('refresh_token_inactivity');
    const stored = await stack.local.broker.store.getSecret('rt-intranet');
    expect(stored?.tags).toMatchObject({ tenant: acs.sim.realm, hardExpiresAt: sixMonths });
  });

  it('vends a token that SharePoint REST accepts, with the consented scope', async () => {
    const call = await callSharePoint(stack, acs, 'intranet');
    expect(call.status).toBe(200);
    expect(call.web).toMatchObject({ Title: 'City Intranet' });
    expect(call.token).toMatchObject({ token_type: 'Bearer', scope: 'AllSites.Manage' });
    // ACS's "43199" arrived as a string and was read as a number.
    expect(call.token!.expires_in).toBe(43_199);
    expect(decodeJwtClaims(call.token!.access_token)?.aud).toBe(
      `00000003-0000-0ff1-ce00-000000000000/${new URL(acs.siteUrl).host}@${acs.sim.realm}`,
    );
  });

  it('refreshes without a new refresh token: the stored one stays, refreshedAt moves on', async () => {
    const before = (await stack.local.broker.store.getSecret('rt-intranet'))!;
    stack.clock.advance(12 * 60 * 60 * 1000);
    const call = await callSharePoint(stack, acs, 'intranet');
    expect(call.status).toBe(200);
    expect(acs.sim.stats.byGrant.refresh_token).toBe(1);

    stack.clock.advance(25 * 60 * 60 * 1000);
    const results = await stack.local.broker.rotation.rotationPass();
    expect(results).toContainEqual({ connection: 'intranet', outcome: 'rotated' });
    expect(acs.sim.stats.byGrant.refresh_token).toBe(2);
    const after = (await stack.local.broker.store.getSecret('rt-intranet'))!;
    expect(after.value).toBe(before.value);
    expect(after.version).toBe(before.version);
    expect(Date.parse(after.tags.refreshedAt!)).toBe(stack.clock.now());
    expect(after.tags.hardExpiresAt).toBe(before.tags.hardExpiresAt);
  });

  it('discovers the realm once for consent, tokens and rotation', () => {
    expect(acs.sim.stats.realmRequests).toBe(1);
    expect(stack.logs.filter((l) => l.includes('"event":"acs.realm_discovered"'))).toHaveLength(1);
  });

  it('refuses another scope: an ACS token is for the site only', async () => {
    const res = await stack.api('/api/token?connection=intranet&scope=https://graph.microsoft.com/User.Read');
    expect(res.status).toBe(400);
    expect(((await res.json()) as Problem).code).toBe('invalid_request');
  });

  it('classifies a refused client secret with the ACS number and the fix', async () => {
    acs.sim.setClientSecret('not-the-configured-secret');
    try {
      stack.local.broker.tokens.invalidate('intranet');
      const res = await stack.api('/api/token?connection=intranet');
      expect(res.status).toBe(502);
      const problem = (await res.json()) as Problem;
      expect(problem).toMatchObject({
        code: 'client_misconfigured',
        providerError: { error: 'invalid_client' },
      });
      expect(problem.detail).toContain('ACS50012');
      expect(problem.detail).toContain('broker secrets set app-secret');
      expect(problem.detail).not.toContain('retired');
      expect((await health(stack, 'intranet')).status).toBe('connected');
    } finally {
      acs.sim.setClientSecret(stack.clientSecret);
    }
  });

  it('warns ahead of the 6-month end, then asks for consent once ACS lets the refresh token expire', async () => {
    const intranet = await health(stack, 'intranet');
    const end = Date.parse(intranet.hardExpiresAt!);
    stack.clock.set(end - 10 * DAY);
    expect((await health(stack, 'intranet')).warning).toBe(true);
    await stack.local.broker.rotation.rotationPass();
    expect(stack.logs.some((l) => /"event":"deadline.approaching".*"kind":"hard_expiry"/.test(l))).toBe(true);

    stack.clock.set(end + 60_000);
    stack.local.broker.tokens.invalidate('intranet');
    const res = await stack.api('/api/token?connection=intranet');
    expect(res.status).toBe(409);
    expect(((await res.json()) as Problem).code).toBe('consent_required');
    expect(await health(stack, 'intranet')).toMatchObject({
      status: 'needs_consent',
      lastError: 'invalid_grant',
    });

    // A new consent starts a new 6 months.
    expect((await trustIt(stack.url, key(), 'intranet', { account: 'clerk@city.example' })).status).toBe(200);
    const renewed = await health(stack, 'intranet');
    expect(renewed.status).toBe('connected');
    expect(renewed.hardExpiresAt).toBe(addCalendarMonths(new Date(stack.clock.now()), 6).toISOString());
    expect((await callSharePoint(stack, acs, 'intranet')).status).toBe(200);
  });

  it('takes LoginName when the account has no Email, and leaves the account empty when SharePoint fails', async () => {
    acs.sim.setUser('kiosk@city.example', { email: '' });
    // Connected as someone else by the tests above: the kiosk account takes it over (account pinning).
    const kiosk = { account: 'kiosk@city.example', replace: true };
    expect((await trustIt(stack.url, key(), 'intranet', kiosk)).status).toBe(200);
    expect((await health(stack, 'intranet')).account).toBe('i:0#.f|membership|kiosk@city.example');

    acs.sim.failNext('currentuser', { status: 403, body: '{"error":{"code":"-2147024891"}}' });
    expect((await trustIt(stack.url, key(), 'intranet', { account: 'clerk@city.example' })).status).toBe(200);
    const intranet = await health(stack, 'intranet');
    expect(intranet).toMatchObject({ status: 'connected', account: null });
    expect(stack.logs.some((l) => l.includes('"event":"acs.currentuser_failed"'))).toBe(true);
    expect((await callSharePoint(stack, acs, 'intranet')).status).toBe(200);
  });

  it('reports "Cancel" on the trust page as a failed consent', async () => {
    const outcome = await trustIt(stack.url, key(), 'intranet', { cancel: true });
    expect(outcome.status).toBe(400);
    expect(outcome.body).toContain('access_denied');
  });
});

/**
 * SharePoint Online after 2026-04-02: ACS refuses, the broker says why and where to go, and the same
 * connection id moved to `entra` serves the same callers unchanged.
 */
describe('sharepoint-acs on SharePoint Online: retirement and the move to entra', () => {
  let site: AcsFake;
  let stack: Stack;
  const SITE = 'https://contoso.sharepoint.com';

  beforeAll(async () => {
    site = await startAcsSimulator({
      clientId: CLIENT_ID,
      siteAlias: SITE,
      now: () => (stack ? stack.clock.now() : Date.now()),
      // SharePoint Online accepts Entra's tokens for its own resource.
      acceptBearer: (token) => {
        if (!stack.sim.issuedSecrets().includes(token)) return undefined;
        const claims = decodeJwtClaims(token);
        const alive = typeof claims?.exp === 'number' && claims.exp * 1000 > stack.clock.now();
        return claims?.aud === SITE && alive ? { account: String(claims.upn) } : undefined;
      },
    });
    stack = await startStack({
      overrides: { fetch: site.fetch },
      connections: {
        intranet: {
          provider: 'sharepoint-acs',
          siteUrl: SITE,
          accessControlUrl: site.accessControlUrl,
          scopes: ['AllSites.Manage'],
          // The policy lets it through, so what answers is ACS itself.
          allowedScopes: ['https://graph.microsoft.com/User.Read'],
        },
      },
    });
    site.sim.setClientSecret(stack.clientSecret);
    site.sim.registerRedirectUri(`${stack.url}/api/callback`);
  });
  afterAll(async () => {
    await stack.close();
    await site.close();
  });
  afterEach(async () => expect(await findLeaks(stack, site.sim.issuedSecrets())).toEqual([]));

  it('says ACS is retired for SharePoint Online, on the problem, the status page and in the log', async () => {
    const outcome = await trustIt(stack.url, stack.local.functionKey, 'intranet', { fetch: site.fetch });
    expect(outcome.status).toBe(200);
    expect((await callSharePoint(stack, site, 'intranet')).status).toBe(200);

    site.sim.retire();
    stack.clock.advance(DAY);
    const call = await callSharePoint(stack, site, 'intranet');
    expect(call.status).toBe(502);
    expect(call.problem).toMatchObject({
      code: 'client_misconfigured',
      providerError: { error: 'acs_retired_for_sharepoint_online' },
    });
    expect(call.problem!.detail).toMatch(/ACS is retired for SharePoint Online/);
    expect(call.problem!.detail).toContain('https://contoso.sharepoint.com/AllSites.Manage');
    expect(call.problem!.detail).toContain('docs/sharepoint.md');
    expect(call.problem!.detail).toContain('invalid_client, ACS50012');

    const results = await stack.local.broker.rotation.rotationPass();
    expect(results).toContainEqual({
      connection: 'intranet',
      outcome: 'client_misconfigured',
      error: 'acs_retired_for_sharepoint_online',
    });
    expect((await health(stack, 'intranet')).lastError).toBe('acs_retired_for_sharepoint_online');
    const page = await (await stack.api('/api/status', { headers: { accept: 'text/html' } })).text();
    expect(page).toContain('acs_retired_for_sharepoint_online');
    const logged = stack.logs.find((l) => l.includes('"event":"acs.retired"'));
    expect(logged).toContain('"migrate":"docs/sharepoint.md"');
  });

  it('serves the same callers unchanged once the connection id is an entra connection', async () => {
    // The operator's edit of connections.json: same id, provider entra, the SharePoint scope.
    stack.env.BROKER_CONNECTIONS = JSON.stringify({
      connections: {
        intranet: {
          provider: 'entra',
          authority: stack.simUrl,
          tenant: 'organizations',
          clientId: CLIENT_ID,
          credential: { type: 'secret', secretName: 'app-secret' },
          scopes: [`${SITE}/AllSites.Manage`],
        },
      },
    });
    await stack.restart();
    expect(
      // Another account than the ACS one: the operator uses "Change account" (replace=true).
      (
        await consent(stack.url, stack.local.functionKey, 'intranet', {
          account: 'clerk@contoso.com',
          replace: true,
        })
      ).status,
    ).toBe(200);
    const call = await callSharePoint(stack, site, 'intranet');
    expect(call.status).toBe(200);
    expect(call.web).toMatchObject({ Title: 'City Intranet' });
    expect(call.token!.scope).toContain(`${SITE}/AllSites.Manage`);
    expect(await health(stack, 'intranet')).toMatchObject({
      provider: 'entra',
      status: 'connected',
      account: 'clerk@contoso.com',
      lastError: null,
    });
    // An hour on, the Entra refresh keeps the same callers served.
    stack.clock.advance(2 * 60 * 60 * 1000);
    expect((await callSharePoint(stack, site, 'intranet')).status).toBe(200);
  });
});

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent, parseForm } from '../fakes/consent-client.js';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.js';
import { type AzuriteTables, startAzuriteTables } from '../support/azurite.js';
import { acceptInvitation, openLink, postForm } from '../support/invitation-client.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const ALERTS = { timeoutMs: 300, backoffMs: 20 };

/** A needs_consent event of a pinned connection carries a link only its account can complete. */
describe('alerts carry a reconnect link (ALERT_RECONNECT_LINKS)', () => {
  let stack: Stack;
  let off: Stack;
  let receiver: WebhookReceiver;
  let offReceiver: WebhookReceiver;
  const tokens: string[] = [];

  const killGrant = async (s: Stack, connection: string, account: string) => {
    s.local.broker.tokens.invalidate(connection);
    s.sim.revokeGrants(account);
    expect((await s.api(`/api/token?connection=${connection}`)).status).toBe(409);
    await s.local.broker.events.drain();
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    offReceiver = await startWebhookReceiver();
    stack = await startStack({
      connections: { pinned: {}, never: {} },
      env: { ALERT_WEBHOOK_URL: `${receiver.url}/hook` },
      overrides: { alerts: ALERTS },
    });
    off = await startStack({
      connections: { pinned: { expectedAccount: 'off@contoso.com' } },
      env: { ALERT_WEBHOOK_URL: `${offReceiver.url}/hook`, ALERT_RECONNECT_LINKS: 'false' },
      overrides: { alerts: ALERTS },
    });
  });
  afterAll(async () => {
    await stack.close();
    await off.close();
    await receiver.close();
    await offReceiver.close();
  });
  afterEach(async () => {
    expect(await findLeaks(stack, tokens)).toEqual([]);
    expect(await findLeaks(off)).toEqual([]);
  });

  it('pinned by its last consent: the event ends with a 7-day link the same account completes', async () => {
    expect(
      (await consent(stack.url, stack.local.functionKey, 'pinned', { account: 'kim@contoso.com' })).status,
    ).toBe(200);
    await killGrant(stack, 'pinned', 'kim@contoso.com');
    const event = receiver.events.find((e) => e.type === 'connection.needs_consent')!;
    const url = String(event.reconnectUrl);
    tokens.push(url.split('/').pop()!);
    expect(url).toMatch(new RegExp(`^${stack.url}/api/connect/[A-Za-z0-9_-]{43}$`));
    expect(String(event.text).endsWith(` Reconnect: ${url}`)).toBe(true);
    const listed = (await (await stack.api('/api/connections/pinned/invitations')).json()) as {
      invitations: Array<{ expiresAt: string; replace: boolean; createdBy: { name?: string } }>;
    };
    expect(listed.invitations).toEqual([
      expect.objectContaining({
        replace: false,
        createdBy: { name: 'alert' },
        expiresAt: new Date(stack.clock.now() + 7 * 86_400_000).toISOString(),
      }),
    ]);
    // No replace: someone who intercepted it cannot take the connection over.
    const other = await acceptInvitation(url, 'mallory@contoso.com');
    expect(other.status).toBe(403);
    expect(other.body).toContain('account_mismatch');
    expect((await acceptInvitation(url, 'kim@contoso.com')).status).toBe(200);
    await stack.local.broker.events.drain();
    expect(receiver.events.at(-1)).toMatchObject({ type: 'connection.recovered' });
    expect(receiver.events.at(-1)).not.toHaveProperty('reconnectUrl');
  });

  it('ALERT_RECONNECT_LINKS=false: the same event, without a link', async () => {
    expect(
      (await consent(off.url, off.local.functionKey, 'pinned', { account: 'off@contoso.com' })).status,
    ).toBe(200);
    await killGrant(off, 'pinned', 'off@contoso.com');
    const event = offReceiver.events.find((e) => e.type === 'connection.needs_consent')!;
    expect(event).toBeDefined();
    expect(event).not.toHaveProperty('reconnectUrl');
    expect(String(event.text)).not.toContain('/api/connect/');
    const listed = (await (await off.api('/api/connections/pinned/invitations')).json()) as {
      invitations: unknown[];
    };
    expect(listed.invitations).toEqual([]);
  });
});

const PUBLIC_CLIENT = '0a1b2c3d-0000-4000-8000-00000000d0d0';

/** A device-code connection from an invitation: the page polls an anonymous route with a sealed attempt. */
describe('invitation to a device-code connection', () => {
  let stack: Stack;
  const tokens: string[] = [];
  beforeAll(async () => {
    stack = await startStack({
      connections: {
        outlook: {
          flow: 'device_code',
          tenant: 'consumers',
          clientId: PUBLIC_CLIENT,
          credential: undefined,
          scopes: ['User.Read', 'Mail.Read'],
          expectedAccount: 'owner@outlook.com',
        },
      },
    });
    stack.sim.registerClient({ clientId: PUBLIC_CLIENT, redirectUris: [] });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack, tokens)).toEqual([]));

  it('shows the user code, polls without a key, connects and uses the link up', async () => {
    const created = (await (
      await stack.api('/api/connections/outlook/invitations', { method: 'POST', body: '{}' })
    ).json()) as { url: string; id: string };
    tokens.push(created.url.split('/').pop()!);
    const { html, cookie } = await openLink(created.url);
    const { action, fields } = parseForm(html, created.url);
    const page = await postForm(action, fields, cookie);
    expect(page.status).toBe(200);
    const body = await page.text();
    const userCode = /id="user-code">([A-Z2-9]+)</.exec(body)![1]!;
    const poll = /data-poll="([^"]+)"/.exec(body)![1]!.replace(/&amp;/g, '&').replace(/&#38;/g, '&');
    expect(poll).toMatch(/^\/api\/connect\/poll\?connection=outlook&attempt=/);
    expect(body).not.toContain('code=');

    // Anonymous, no key: pending, then connected once the owner signs in.
    const first = await fetch(`${stack.url}${poll}`, { headers: { accept: 'application/json' } });
    expect(first.status).toBe(200);
    const pending = (await first.json()) as { status: string; pollUrl: string };
    expect(pending.status).toBe('pending');
    expect(pending.pollUrl).toMatch(new RegExp(`^${stack.url}/api/connect/poll\\?`));
    stack.sim.approveDevice(userCode, 'owner@outlook.com');
    stack.clock.advance(5000);
    const done = await fetch(pending.pollUrl, { headers: { accept: 'application/json' } });
    expect(await done.json()).toEqual({ status: 'connected', account: 'owner@outlook.com' });
    expect((await stack.local.broker.store.getSecret('rt-outlook'))?.tags.account).toBe('owner@outlook.com');
    expect((await openLink(created.url)).res.status).toBe(410);

    // The anonymous poll takes only attempts begun from an invitation: one from /api/start is refused.
    const keyed = (await (
      await stack.api('/api/start?connection=outlook', { headers: { accept: 'application/json' } })
    ).json()) as { pollUrl: string };
    const url = new URL(keyed.pollUrl);
    const anon = await fetch(`${stack.url}/api/connect/poll${url.search.replace(/&code=[^&]*/, '')}`, {
      headers: { accept: 'application/json' },
    });
    expect(anon.status).toBe(400);
    expect(((await anon.json()) as { code: string }).code).toBe('consent_failed');
  });
});

/** With `AzureWebJobsStorage`, invitations live in Table Storage (Azurite here), not in the data folder. */
describe('invitations in Table Storage (Azurite)', () => {
  let stack: Stack;
  let azurite: AzuriteTables;
  const tokens: string[] = [];
  beforeAll(async () => {
    azurite = await startAzuriteTables();
    stack = await startStack({
      connections: { desk: { expectedAccount: 'desk@contoso.com' } },
      env: { AzureWebJobsStorage: azurite.connectionString, REFRESH_LOCK: 'process' },
    });
  }, 30_000);
  afterAll(async () => {
    await stack.close();
    await azurite.close();
  });
  afterEach(async () => expect(await findLeaks(stack, tokens)).toEqual([]));

  it('creates, lists, uses up and refuses again, with nothing in the data folder', async () => {
    const res = await stack.api('/api/connections/desk/invitations', {
      method: 'POST',
      body: '{"note":"table"}',
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; url: string };
    tokens.push(created.url.split('/').pop()!);
    expect((await acceptInvitation(created.url, 'desk@contoso.com')).status).toBe(200);
    expect((await openLink(created.url)).res.status).toBe(410);
    const listed = (await (await stack.api('/api/connections/desk/invitations')).json()) as {
      invitations: Array<{ id: string; state: string }>;
    };
    expect(listed.invitations).toEqual([expect.objectContaining({ id: created.id, state: 'used' })]);
    expect(existsSync(join(stack.dataDir, 'invitations'))).toBe(false);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { consent } from '../fakes/consent-client.js';
import { CLIENT_ID, CLIENT_SECRET_NAME, type Stack, startStack } from './harness.js';

const DAY = 86_400_000;

/** Rotation outcomes, cooldown and deadline forecasts, driven by the injected clock (no sleeps). */
describe('rotation pass and deadline forecasts', () => {
  let stack: Stack;
  const health = async (id: string) => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === id)!;
  };
  const pass = () => stack.local.broker.rotation.rotationPass();
  const outcomeOf = (results: Awaited<ReturnType<typeof pass>>, id: string) =>
    results.find((r) => r.connection === id);
  const warnings = () =>
    stack.logs
      .filter((l) => l.includes('"event":"deadline.approaching"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    stack = await startStack({
      connections: { idle: { rotateAfter: 'P100D' }, busy: {}, flaky: {}, never: {} },
      // One at a time, so an injected run of provider failures lands on one connection.
      env: { ROTATION_CONCURRENCY: '1' },
    });
    for (const id of ['idle', 'busy', 'flaky']) {
      expect(
        (await consent(stack.url, stack.local.functionKey, id, { account: `${id}@contoso.com` })).status,
      ).toBe(200);
    }
  });
  afterAll(() => stack.close());

  it('forecasts the 90-day inactivity limit and warns from 14 days before', async () => {
    const consentedAt = (await health('idle')).consentedAt!;
    const fresh = await health('idle');
    expect(fresh.nextDeadline).toEqual({
      kind: 'refresh_token_inactivity',
      at: new Date(Date.parse(consentedAt) + 90 * DAY).toISOString(),
    });
    expect(fresh.warning).toBe(false);

    stack.clock.advance(89 * DAY);
    const idle = await health('idle');
    expect(idle.warning).toBe(true);
    const results = await pass();
    // rotateAfter P100D: the pass leaves it alone, and says so in a warning.
    expect(outcomeOf(results, 'idle')).toMatchObject({ outcome: 'skipped', reason: 'fresh' });
    expect(warnings()).toContainEqual(
      expect.objectContaining({
        connection: 'idle',
        kind: 'refresh_token_inactivity',
        daysLeft: 1,
        passed: false,
      }),
    );
    // The other connections (rotateAfter PT24H) were rotated, which moves their deadline 90 days on.
    expect(outcomeOf(results, 'busy')!.outcome).toBe('rotated');
    expect((await health('busy')).warning).toBe(false);
    expect(outcomeOf(results, 'never')).toMatchObject({ outcome: 'skipped', reason: 'not_connected' });
  });

  it('warns about a client secret 10 days from expiry, once a day', async () => {
    const store = stack.local.broker.store;
    const secret = (await store.getSecret(CLIENT_SECRET_NAME))!;
    // Whole seconds: Key Vault keeps no milliseconds.
    const expiresOn = new Date(Math.floor((stack.clock.now() + 10 * DAY) / 1000) * 1000);
    await store.updateSecretProperties(CLIENT_SECRET_NAME, secret.version, { expiresOn });
    const busy = await health('busy');
    expect(busy.deadlines).toContainEqual({ kind: 'client_secret_expiry', at: expiresOn.toISOString() });
    expect(busy.nextDeadline).toEqual({ kind: 'client_secret_expiry', at: expiresOn.toISOString() });
    expect(busy.warning).toBe(true);

    const count = () =>
      warnings().filter((w) => w.connection === 'busy' && w.kind === 'client_secret_expiry').length;
    await pass();
    expect(count()).toBe(1);
    stack.clock.advance(60 * 60 * 1000);
    await pass();
    expect(count()).toBe(1);
    stack.clock.advance(DAY);
    await pass();
    expect(count()).toBe(2);
  });

  it('shows a hard expiry that has passed', async () => {
    const store = stack.local.broker.store;
    const rt = (await store.getSecret('rt-flaky'))!;
    const past = new Date(stack.clock.now() - DAY).toISOString();
    await store.updateSecretProperties('rt-flaky', rt.version, { tags: { ...rt.tags, hardExpiresAt: past } });
    const flaky = await health('flaky');
    expect(flaky.hardExpiresAt).toBe(past);
    expect(flaky.nextDeadline).toEqual({ kind: 'hard_expiry', at: past });
    expect(flaky.warning).toBe(true);
    await pass();
    expect(warnings()).toContainEqual(
      expect.objectContaining({ connection: 'flaky', kind: 'hard_expiry', passed: true }),
    );
  });

  it('puts a transient failure in a cooldown, retries later, and never stops the others', async () => {
    stack.clock.advance(2 * DAY);
    stack.sim.failNext('token', { status: 503, body: 'down' }, 3);
    const first = await pass();
    const failed = first.filter((r) => r.outcome === 'transient');
    expect(failed).toHaveLength(1);
    const id = failed[0]!.connection;
    expect(first.filter((r) => r.outcome === 'rotated').length).toBeGreaterThanOrEqual(1);
    expect(stack.logs.at(-1)).toMatch(/"event":"rotation.pass".*"transient":1/);

    stack.clock.advance(5 * 60 * 1000);
    expect(outcomeOf(await pass(), id)).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    stack.clock.advance(15 * 60 * 1000);
    expect(outcomeOf(await pass(), id)!.outcome).toBe('rotated');
  });

  it('classifies a dead grant and a rejected client', async () => {
    stack.clock.advance(2 * DAY);
    stack.sim.revokeGrants('flaky@contoso.com');
    stack.sim.setClientSecretExpired(CLIENT_ID, true);
    try {
      const results = await pass();
      expect(outcomeOf(results, 'flaky')!.outcome).toBe('client_misconfigured');
    } finally {
      stack.sim.setClientSecretExpired(CLIENT_ID, false);
    }
    stack.clock.advance(2 * DAY);
    const results = await pass();
    expect(outcomeOf(results, 'flaky')).toMatchObject({
      outcome: 'needs_consent',
      error: 'invalid_grant AADSTS50173',
    });
    expect((await health('flaky')).status).toBe('needs_consent');
    expect(outcomeOf(await pass(), 'flaky')).toMatchObject({ outcome: 'needs_consent', reason: 'stored' });
    for (const line of stack.logs) for (const s of stack.sim.issuedSecrets()) expect(line).not.toContain(s);
  });
});

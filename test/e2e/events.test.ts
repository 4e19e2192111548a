import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, createBroker } from '../../src/lib/broker.js';
import { parseConnections } from '../../src/lib/config/load.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { InProcessLock, type RefreshLock } from '../../src/lib/lock/lock.js';
import { createLogger } from '../../src/lib/logger.js';
import { consent } from '../fakes/consent-client.js';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.js';
import { CLIENT_ID, CLIENT_SECRET_NAME, findLeaks, type Stack, startStack } from './harness.js';

const DAY = 86_400_000;
const ACCOUNT = 'support@contoso.com';
/** A chat tool's webhook URL is a credential: it must never reach a log line. */
const HOOK_PATH = '/webhookb2/secret-hook-path-0123456789';
const ALERTS = { timeoutMs: 300, backoffMs: 20 };

/**
 * DESIGN.md "Events": one `connection.state_changed` line and one webhook POST per transition, sent
 * only by the instance that writes the new status tag. Two brokers share one store and one lock, as
 * two Function instances share Key Vault and the blob lease (the lock says `crossInstance`, so each
 * holder reads the store itself).
 */
describe('state-change events and the alert webhook', () => {
  let stack: Stack;
  let other: Broker;
  let receiver: WebhookReceiver;
  const otherLogs: string[] = [];
  const shared = new InProcessLock();
  const lock: RefreshLock = { crossInstance: true, withLock: (key, fn) => shared.withLock(key, fn) };

  const drain = () => Promise.all([stack.local.broker.events.drain(), other.events.drain()]);
  const ofType = (type: string) => receiver.events.filter((e) => e.type === type);
  const logLines = (event: string) =>
    [...stack.logs, ...otherLogs]
      .filter((l) => l.includes(`"event":"${event}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const connect = async () => {
    expect((await consent(stack.url, stack.local.functionKey, 'support', { account: ACCOUNT })).status).toBe(
      200,
    );
  };
  const invalidate = () => {
    stack.local.broker.tokens.invalidate('support');
    other.tokens.invalidate('support');
  };
  /** `n` callers on each instance at once: HTTP on the first, in process on the second. */
  const callers = (n: number) =>
    Promise.all([
      ...Array.from({ length: n }, () =>
        stack.api('/api/token?connection=support').then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
      ...Array.from({ length: n }, () =>
        other.tokens.getAccessToken('support').then(
          () => 200,
          (err: { status?: number }) => err.status ?? 500,
        ),
      ),
    ]);

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      connections: { support: { expectedAccount: ACCOUNT } },
      env: { ALERT_WEBHOOK_URL: `${receiver.url}${HOOK_PATH}` },
      overrides: { lock, alerts: ALERTS },
    });
    // The second instance: same settings, same store, same lock, same clock; its own memory and log.
    const settings = loadSettings(stack.env);
    other = await createBroker({
      settings,
      connections: parseConnections(stack.env.BROKER_CONNECTIONS!, 'BROKER_CONNECTIONS', settings),
      store: stack.local.broker.store,
      clock: stack.clock,
      logger: createLogger((_level, line) => otherLogs.push(line), 'debug'),
      lock,
      alerts: ALERTS,
    });
    await connect();
    await drain();
  });
  afterAll(async () => {
    await drain();
    await stack.close();
    await receiver.close();
  });

  it('a first consent is a state change in the log, but no alert', () => {
    expect(logLines('connection.state_changed')).toEqual([
      expect.objectContaining({
        connection: 'support',
        from: 'not_connected',
        to: 'connected',
        reason: null,
      }),
    ]);
    expect(receiver.requests).toEqual([]);
  });

  it('revoked: 20 concurrent callers on two instances → exactly one connection.needs_consent', async () => {
    invalidate();
    stack.sim.revokeGrants(ACCOUNT);
    const statuses = await callers(10);
    expect(statuses).toEqual(Array(20).fill(409));
    await drain();
    expect(ofType('connection.needs_consent')).toHaveLength(1);
    expect(receiver.events).toHaveLength(1);
    const event = receiver.events[0]!;
    expect(event).toEqual({
      type: 'connection.needs_consent',
      connection: 'support',
      at: new Date(stack.clock.now()).toISOString(),
      status: 'needs_consent',
      lastError: 'invalid_grant AADSTS50173',
      remedy: {
        kind: 'reconnect',
        text: expect.stringContaining(`${stack.url}/api/start?connection=support`),
      },
      statusUrl: `${stack.url}/api/status`,
      text: expect.stringContaining(`sign in as ${ACCOUNT} again`),
      // Pinned (expectedAccount): a fresh invitation the owner can use as it is (DESIGN.md, "Invitations").
      reconnectUrl: expect.stringMatching(new RegExp(`^${stack.url}/api/connect/[A-Za-z0-9_-]{43}$`)),
    });
    expect(String(event.text).endsWith(` ${String(event.reconnectUrl)}`)).toBe(true);
    expect(event.text).not.toContain('\n');
    expect(logLines('connection.state_changed').filter((l) => l.to === 'needs_consent')).toEqual([
      expect.objectContaining({
        connection: 'support',
        from: 'connected',
        to: 'needs_consent',
        reason: 'invalid_grant AADSTS50173',
        remedy: 'reconnect',
      }),
    ]);
  });

  it('consent again → exactly one connection.recovered', async () => {
    await connect();
    await drain();
    expect(ofType('connection.recovered')).toEqual([
      expect.objectContaining({ connection: 'support', status: 'connected', lastError: null, remedy: null }),
    ]);
    expect(ofType('connection.recovered')[0]!.text).toContain(`connected again as ${ACCOUNT}`);
  });

  it('a rejected client → one connection.client_misconfigured; fixed → one connection.recovered', async () => {
    const recoveredBefore = ofType('connection.recovered').length;
    invalidate();
    stack.sim.setClientSecretExpired(CLIENT_ID, true);
    try {
      expect(await callers(3)).toEqual(Array(6).fill(502));
    } finally {
      stack.sim.setClientSecretExpired(CLIENT_ID, false);
    }
    await drain();
    expect(ofType('connection.client_misconfigured')).toEqual([
      expect.objectContaining({
        lastError: 'invalid_client AADSTS7000222',
        remedy: {
          kind: 'new_client_secret',
          text: expect.stringContaining(`broker secrets set ${CLIENT_SECRET_NAME}`),
        },
      }),
    ]);
    expect((await callers(2)).every((s) => s === 200)).toBe(true);
    await drain();
    expect(ofType('connection.recovered')).toHaveLength(recoveredBefore + 1);
  });

  it.each([
    ['error', 'HTTP 500'],
    ['hang', 'timeout after 300 ms'],
    ['redirect', 'redirect 302 (not followed)'],
  ] as const)(
    'receiver %s → retried 3 times, logged alert.delivery_failed, state intact, callers not delayed',
    async (mode, reason) => {
      receiver.mode = mode;
      const requestsBefore = receiver.requests.length;
      invalidate();
      stack.sim.revokeGrants(ACCOUNT);
      try {
        const started = performance.now();
        expect(await callers(1)).toEqual([409, 409]);
        const callerMs = performance.now() - started;
        const drained = performance.now();
        await drain();
        const deliveryMs = performance.now() - drained;
        // The callers had their answer long before the delivery gave up.
        if (mode === 'hang') expect(deliveryMs).toBeGreaterThan(callerMs);
        expect(receiver.requests.slice(requestsBefore)).toEqual(Array(4).fill(`POST ${HOOK_PATH}`));
        expect(logLines('alert.delivery_failed').at(-1)).toMatchObject({
          type: 'connection.needs_consent',
          connection: 'support',
          attempts: 4,
          reason,
        });
        expect((await stack.local.broker.store.getSecret('rt-support'))!.tags).toMatchObject({
          status: 'needs_consent',
          lastError: 'invalid_grant AADSTS50173',
        });
        expect(logLines('connection.state_changed').at(-1)).toMatchObject({ to: 'needs_consent' });
      } finally {
        receiver.mode = 'ok';
        await connect();
        await drain();
      }
    },
  );

  it('deadline.approaching at most once a day under the manual clock', async () => {
    const store = stack.local.broker.store;
    const secret = (await store.getSecret(CLIENT_SECRET_NAME))!;
    const expiresOn = new Date(Math.floor((stack.clock.now() + 10 * DAY) / 1000) * 1000);
    await store.updateSecretProperties(CLIENT_SECRET_NAME, secret.version, { expiresOn });
    const pass = async () => {
      await stack.local.broker.rotation.rotationPass();
      await drain();
      return ofType('deadline.approaching').length;
    };
    expect(await pass()).toBe(1);
    stack.clock.advance(60 * 60 * 1000);
    expect(await pass()).toBe(1);
    stack.clock.advance(22 * 60 * 60 * 1000);
    expect(await pass()).toBe(1);
    stack.clock.advance(DAY);
    expect(await pass()).toBe(2);
    expect(ofType('deadline.approaching')[0]).toMatchObject({
      connection: 'support',
      status: 'connected',
      remedy: {
        kind: 'renew_before_deadline',
        text: expect.stringContaining(`the client secret expires on ${expiresOn.toISOString().slice(0, 10)}`),
      },
    });
  });

  it('no token, secret or webhook URL in any event or log line', async () => {
    expect(await findLeaks(stack)).toEqual([]);
    const everything = [JSON.stringify(receiver.events), ...stack.logs, ...otherLogs].join('\n');
    for (const secret of [...stack.sim.issuedSecrets(), stack.clientSecret])
      expect(everything).not.toContain(secret);
    expect(everything).not.toContain('secret-hook-path');
  });
});

describe('ALERT_WEBHOOK_URL', () => {
  it('must be https, or http on loopback; anything else refuses start-up with a clear line', () => {
    expect(loadSettings({ ALERT_WEBHOOK_URL: 'https://contoso.webhook.office.com/x' }).alertWebhookUrl).toBe(
      'https://contoso.webhook.office.com/x',
    );
    expect(loadSettings({ ALERT_WEBHOOK_URL: 'http://127.0.0.1:9000/hook' }).alertWebhookUrl).toBeDefined();
    expect(() => loadSettings({ ALERT_WEBHOOK_URL: 'http://hooks.example.com/x' })).toThrow(
      'setting ALERT_WEBHOOK_URL: must use https:// (plain http only for loopback hosts)',
    );
    expect(() => loadSettings({ ALERT_WEBHOOK_URL: 'not a url' })).toThrow(
      'setting ALERT_WEBHOOK_URL: is not a URL',
    );
    expect(loadSettings({}).alertWebhookUrl).toBeUndefined();
  });
});

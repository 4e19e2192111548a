import { InvocationContext, type Timer } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rotateHandler } from '../../src/functions/rotate.js';
import { InProcessLock } from '../../src/lib/lock/lock.js';
import { consent } from '../fakes/consent-client.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';
import { CLIENT_ID, FUNCTION_KEY, type Stack, startStack } from './harness.js';

const SERVER = 2;
const CLIENT = 3;
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

/**
 * Telemetry over OTLP/HTTP (docs/telemetry.md), received by an in-process collector stand-in: every
 * metric and attribute of the contract, the span tree of a refreshing `/api/token`, `traceparent` both
 * ways, and nothing secret in what leaves. Once per protocol.
 */
describe.each([
  ['http/protobuf', 'application/x-protobuf'],
  ['http/json', 'application/json'],
])('telemetry over OTLP %s', (protocol, contentType) => {
  let stack: Stack;
  let receiver: OtlpReceiver;
  /** The provider fetch as the broker hands it over: what headers left, and a switch for an outage. */
  const sent: { url: string; traceparent: string | null }[] = [];
  let providerDown = false;
  const providerFetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    sent.push({ url, traceparent: new Headers(init?.headers).get('traceparent') });
    if (providerDown) throw new TypeError('fetch failed');
    return fetch(input, init);
  };
  const mutex = new InProcessLock();
  const token = (query: string, headers: Record<string, string> = {}) =>
    stack.api(`/api/token?${query}`, { headers });
  const fresh = (id: string) => stack.local.broker.tokens.invalidate(id);

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    stack = await startStack({
      connections: { support: {}, doomed: {}, rejected: {}, flaky: {}, never: {} },
      overrides: {
        fetch: providerFetch,
        // As on Azure (the blob lease): the holder reads the store, not the grant cache.
        lock: { crossInstance: true, withLock: (key, fn) => mutex.withLock(key, fn) },
      },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_SERVICE_NAME: 'broker-under-test',
        OTEL_METRIC_EXPORT_INTERVAL: '600000',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
    for (const id of ['support', 'doomed', 'rejected', 'flaky']) {
      const res = await consent(stack.url, stack.local.functionKey, id, { account: `${id}@contoso.com` });
      expect(res.status).toBe(200);
    }

    // served: cache (consent primed it), then refresh with the caller's traceparent
    expect((await token('connection=support')).status).toBe(200);
    fresh('support');
    sent.length = 0;
    const traced = await token('connection=support', { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` });
    expect(traced.status).toBe(200);
    // dead: the grant was revoked at Entra
    stack.sim.revokeGrants('doomed@contoso.com');
    fresh('doomed');
    expect((await token('connection=doomed')).status).toBe(409);
    // client: the app's secret expired
    stack.sim.setClientSecretExpired(CLIENT_ID, true);
    fresh('rejected');
    expect((await token('connection=rejected')).status).toBe(502);
    stack.sim.setClientSecretExpired(CLIENT_ID, false);
    // transient: the provider cannot be reached
    providerDown = true;
    fresh('flaky');
    expect((await token('connection=flaky')).status).toBe(503);
    providerDown = false;
    // errors before any service: an id the catalog does not know, a missing key
    expect((await token('connection=not-in-the-catalog')).status).toBe(404);
    expect((await stack.api('/api/token?connection=support', { key: 'wrong' })).status).toBe(401);

    // one rotation pass through the timer adapter, as the host fires it
    const broker = stack.local.broker;
    await rotateHandler(async () => broker)({} as Timer, new InvocationContext({ functionName: 'rotate' }));
    await broker.telemetry.flush();
    await vi.waitFor(() => expect(receiver.spans.some((s) => s.name === 'rotation pass')).toBe(true));
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  const points = (name: string) => receiver.lastMetric(name)?.points ?? [];
  const withAttrs = (name: string, attrs: Record<string, unknown>) =>
    points(name).filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));

  it(`arrives as ${contentType} with the service name`, () => {
    expect([...receiver.contentTypes]).toEqual([contentType]);
    expect(receiver.spans[0]?.resource['service.name']).toBe('broker-under-test');
  });

  it('counts token requests by connection, how they were served, and the problem code', () => {
    const m = receiver.lastMetric('broker.token.requests');
    expect(m).toMatchObject({ kind: 'sum', monotonic: true });
    expect(withAttrs('broker.token.requests', { connection: 'support', served: 'cache' })[0]?.value).toBe(1);
    expect(withAttrs('broker.token.requests', { connection: 'support', served: 'refresh' })[0]?.value).toBe(
      1,
    );
    const errors = points('broker.token.requests').filter((p) => p.attributes.served === 'error');
    const byCode = Object.fromEntries(
      errors.map((p) => [`${p.attributes.connection}/${p.attributes.code}`, p.value]),
    );
    expect(byCode).toEqual({
      'doomed/consent_required': 1,
      'rejected/client_misconfigured': 1,
      'flaky/upstream_unavailable': 1,
      // An id outside the catalog is no attribute value: a caller cannot grow the series.
      'undefined/unknown_connection': 1,
    });
    for (const p of points('broker.token.requests')) {
      expect(Object.keys(p.attributes).sort()).toEqual(
        p.attributes.served === 'error'
          ? p.attributes.connection === undefined
            ? ['code', 'served']
            : ['code', 'connection', 'served']
          : ['connection', 'served'],
      );
    }
  });

  it('times token requests in ms by how they were served', () => {
    const m = receiver.lastMetric('broker.token.duration');
    expect(m).toMatchObject({ kind: 'histogram', unit: 'ms' });
    const served = Object.fromEntries(m!.points.map((p) => [p.attributes.served, p.count]));
    expect(served).toEqual({ cache: 1, refresh: 1, error: 4 });
    for (const p of m!.points) expect(Object.keys(p.attributes)).toEqual(['served']);
  });

  it('counts and times refreshes by provider and outcome: ok, dead, client, transient', () => {
    const m = receiver.lastMetric('broker.refreshes');
    expect(m).toMatchObject({ kind: 'sum', monotonic: true });
    const byOutcome = Object.fromEntries(
      m!.points.map((p) => [`${p.attributes.connection}/${p.attributes.outcome}`, p.value]),
    );
    expect(byOutcome).toEqual({
      'support/ok': 1,
      'doomed/dead': 1,
      'rejected/client': 1,
      'flaky/transient': 1,
    });
    for (const p of m!.points) expect(p.attributes.provider).toBe('entra');
    const d = receiver.lastMetric('broker.refresh.duration');
    expect(d).toMatchObject({ kind: 'histogram', unit: 'ms' });
    expect(
      d!.points.map((p) => p.attributes).sort((a, b) => String(a.outcome).localeCompare(String(b.outcome))),
    ).toEqual([
      { provider: 'entra', outcome: 'client' },
      { provider: 'entra', outcome: 'dead' },
      { provider: 'entra', outcome: 'ok' },
      { provider: 'entra', outcome: 'transient' },
    ]);
  });

  it('times the rotation pass in seconds, one point without attributes', () => {
    const m = receiver.lastMetric('broker.rotation.duration');
    expect(m).toMatchObject({ kind: 'histogram', unit: 's' });
    expect(m!.points).toHaveLength(1);
    expect(m!.points[0]).toMatchObject({ attributes: {}, count: 1 });
    expect(m!.points[0]!.sum).toBeLessThan(60);
  });

  it('gauges connections by status and each connection’s nearest deadline in days', () => {
    const c = receiver.lastMetric('broker.connections');
    expect(c?.kind).toBe('gauge');
    expect(Object.fromEntries(c!.points.map((p) => [p.attributes.status, p.value]))).toEqual({
      connected: 3,
      needs_consent: 1,
      not_connected: 1,
    });
    const d = receiver.lastMetric('broker.deadline.days');
    expect(d).toMatchObject({ kind: 'gauge', unit: 'd' });
    const support = d!.points.find((p) => p.attributes.connection === 'support');
    // Entra forgets a grant unused for 90 days; it was just refreshed.
    expect(support).toMatchObject({
      attributes: { connection: 'support', kind: 'refresh_token_inactivity' },
    });
    expect(support!.value).toBeGreaterThan(89);
    expect(support!.value).toBeLessThanOrEqual(90);
    for (const p of d!.points) expect(Object.keys(p.attributes).sort()).toEqual(['connection', 'kind']);
  });

  it('traces a refreshing /api/token: server span under the caller’s, then lock, store and provider', () => {
    const trace = receiver.spans.filter((s) => s.traceId === TRACE_ID);
    const server = trace.find((s) => s.kind === SERVER);
    expect(server).toMatchObject({
      name: 'GET token',
      parentSpanId: CALLER_SPAN,
      attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200 },
    });
    const children = (parent: ReceivedSpan) => trace.filter((s) => s.parentSpanId === parent.spanId);
    const lock = children(server!).find((s) => s.name === 'lock');
    expect(lock?.attributes).toEqual({ connection: 'support' });
    // Under a lock other instances share, the latest refresh token is read from the store; the
    // rotated one is written before the answer.
    expect(children(lock!).map((s) => s.name)).toEqual([
      'store.getSecret',
      'provider.refresh',
      'store.setSecret',
    ]);
    const provider = children(lock!).find((s) => s.name === 'provider.refresh')!;
    expect(provider.attributes).toEqual({ connection: 'support', provider: 'entra', outcome: 'ok' });
    const call = children(provider).find((s) => s.kind === CLIENT);
    expect(call).toMatchObject({
      name: 'POST',
      attributes: { 'http.request.method': 'POST', 'http.response.status_code': 200 },
    });
    // …and the provider was called with this trace, the client span as parent.
    const tokenCall = sent.find((s) => s.url.includes('/oauth2/v2.0/token'));
    expect(tokenCall?.traceparent).toBe(`00-${TRACE_ID}-${call!.spanId}-01`);
  });

  it('marks failures with their problem code only, and spans the rotation pass', () => {
    const dead = receiver.spans.find((s) => s.name === 'provider.refresh' && s.attributes.outcome === 'dead');
    expect(dead?.status).toEqual({ code: 2, message: 'consent_required' });
    expect(dead?.attributes['error.type']).toBe('consent_required');
    const pass = receiver.spans.find((s) => s.name === 'rotation pass');
    expect(pass?.parentSpanId).toBe('');
    const unknown = receiver.spans.find(
      (s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 404,
    );
    expect(unknown?.name).toBe('GET token');
    expect(unknown?.status.code).toBe(0);
  });

  it('sends no token, refresh token, secret, key or account', () => {
    const secrets = [...stack.sim.issuedSecrets(), stack.clientSecret, FUNCTION_KEY].filter(
      (s) => s.length >= 8,
    );
    const everything = receiver.raw.join('\n');
    for (const secret of secrets)
      expect(everything.includes(secret), 'a secret left in telemetry').toBe(false);
    expect(everything).not.toContain('@contoso.com');
    expect(everything).not.toContain('not-in-the-catalog');
  });
});

describe('telemetry with a collector that never answers', () => {
  let stack: Stack;
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await startOtlpReceiver({ hang: true });
    stack = await startStack({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_TIMEOUT: '1500',
        OTEL_BSP_SCHEDULE_DELAY: '20',
        OTEL_METRIC_EXPORT_INTERVAL: '200',
      },
    });
    const res = await consent(stack.url, stack.local.functionKey, 'support', {
      account: 'support@contoso.com',
    });
    expect(res.status).toBe(200);
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  it('still answers tokens at once, and says so in the log once a minute at most', async () => {
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      const res = await stack.api('/api/token?connection=support');
      expect(res.status).toBe(200);
      // Exports hang for 1.5 s each; a token waiting for one would show it.
      expect(performance.now() - started).toBeLessThan(1000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await stack.local.broker.telemetry.flush();
    await stack.local.broker.telemetry.flush();
    const failed = stack.logs.filter((l) => l.includes('"telemetry.export_failed"'));
    expect(failed.length).toBeGreaterThanOrEqual(1);
    // Traces and metrics are each reported once in this minute, however many exports failed.
    expect(new Set(failed.map((l) => (JSON.parse(l) as { signal: string }).signal)).size).toBe(failed.length);
  }, 30_000);
});

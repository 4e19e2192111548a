import {
  type Attributes,
  type Context,
  context,
  type Meter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { isBrokerError } from '../errors.js';
import type { ConnectionHealth } from '../health/status-service.js';
import type { RefreshLock } from '../lock/lock.js';
import type { SecretStore } from '../store/secret-store.js';
import type { TelemetryDeps } from './env.js';
import type { DialectLookup, IncomingRequest, Telemetry, Vend } from './telemetry.js';

/** What the OpenTelemetry-backed telemetry needs besides a tracer and a meter. */
export interface InstrumentDeps {
  tracer: Tracer;
  meter: Meter;
  /** The catalog: only ids it knows become attribute values. */
  catalog: TelemetryDeps['catalog'];
  now: () => number;
  flush: () => Promise<void>;
  shutdown: () => Promise<void>;
}

export type RefreshOutcome = 'ok' | 'dead' | 'client' | 'transient';

/**
 * What a failed refresh means for the dashboard: the grant is dead (a new consent is needed), the
 * provider refused the client or the request as sent, or it may pass on a later try.
 */
export function refreshOutcome(err: unknown): RefreshOutcome {
  if (!isBrokerError(err)) return 'transient';
  if (err.code === 'consent_required') return 'dead';
  if (err.code === 'upstream_unavailable' || err.code === 'internal_error') return 'transient';
  return 'client';
}

/** The problem code of a failure, the only thing of an error that becomes an attribute. */
const codeOf = (err: unknown): string => (isBrokerError(err) ? err.code : 'internal_error');

const DAY_MS = 86_400_000;
/** The gauges' view is read again when older than this (a rotation pass refreshes it anyway). */
const VIEW_MAX_AGE_MS = 10 * 60_000;
const STATUSES = ['connected', 'needs_consent', 'not_connected'] as const;
const STORE_METHODS = [
  'getSecret',
  'setSecret',
  'updateSecretProperties',
  'listSecrets',
  'listVersions',
  'deleteSecret',
] as const;

const propagator = new W3CTraceContextPropagator();
const incomingGetter: TextMapGetter<IncomingRequest> = {
  keys: () => ['traceparent', 'tracestate'],
  get: (carrier, key) =>
    (key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined) ??
    undefined,
};
const headerSetter: TextMapSetter<Headers> = { set: (headers, key, value) => headers.set(key, value) };

/** Telemetry over an OpenTelemetry tracer and meter: the metrics and spans of docs/telemetry.md. */
export function instrument(deps: InstrumentDeps): Telemetry {
  const { tracer, meter } = deps;
  const tokenRequests = meter.createCounter('broker.token.requests', {
    description: 'Token requests answered by /api/token, by connection and how they were served',
    unit: '{request}',
  });
  const tokenDuration = meter.createHistogram('broker.token.duration', {
    description: 'Time to answer a token request',
    unit: 'ms',
  });
  const refreshes = meter.createCounter('broker.refreshes', {
    description: 'Refresh-token redemptions at the provider, by outcome',
    unit: '{refresh}',
  });
  const refreshDuration = meter.createHistogram('broker.refresh.duration', {
    description: 'Time the provider took to redeem a refresh token',
    unit: 'ms',
  });
  const rotationDuration = meter.createHistogram('broker.rotation.duration', {
    description: 'Time one rotation pass took',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600] },
  });
  const connectionsGauge = meter.createObservableGauge('broker.connections', {
    description: 'Connections by status',
    unit: '{connection}',
  });
  const deadlineGauge = meter.createObservableGauge('broker.deadline.days', {
    description: "Days left until each connection's nearest deadline (negative when passed)",
    unit: 'd',
  });

  let health: (() => Promise<ConnectionHealth[]>) | undefined;
  let view: { at: number; connections: ConnectionHealth[] } | undefined;
  let reading: Promise<void> | undefined;
  const readView = (): Promise<void> => {
    if (!health) return Promise.resolve();
    reading ??= health()
      .then((connections) => {
        view = { at: Date.now(), connections };
      })
      // A store that cannot be listed leaves the last view in place; the next pass tries again.
      .catch(() => undefined)
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  connectionsGauge.addCallback((result) => {
    if (!view || Date.now() - view.at > VIEW_MAX_AGE_MS) void readView();
    if (!view) return;
    for (const status of STATUSES) {
      result.observe(view.connections.filter((c) => c.status === status).length, { status });
    }
  });
  deadlineGauge.addCallback((result) => {
    const now = deps.now();
    for (const c of view?.connections ?? []) {
      if (!c.nextDeadline) continue;
      const days = (Date.parse(c.nextDeadline.at) - now) / DAY_MS;
      result.observe(Math.round(days * 100) / 100, { connection: c.id, kind: c.nextDeadline.kind });
    }
  });

  /** Runs `fn` in a child span of the current one; a failure marks the span with its problem code only. */
  const inSpan = <T>(
    name: string,
    attributes: Attributes,
    fn: (span: Span) => Promise<T>,
    kind = SpanKind.INTERNAL,
    parent: Context = context.active(),
  ): Promise<T> =>
    tracer.startActiveSpan(name, { kind, attributes }, parent, async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        // Never the message: some name the account that signed in.
        span.setStatus({ code: SpanStatusCode.ERROR, message: codeOf(err) });
        span.setAttribute('error.type', codeOf(err));
        throw err;
      } finally {
        span.end();
      }
    });

  const connectionAttr = (id: string): Attributes => {
    // Known ids only: a connection that was looked up is in the catalog's memory (no I/O here).
    return deps.catalog.peek(id) === undefined ? {} : { connection: id };
  };

  return {
    enabled: true,

    request(incoming, run) {
      const parent = propagator.extract(ROOT_CONTEXT, incoming, incomingGetter);
      return inSpan(
        `${incoming.method} ${incoming.route}`,
        { 'http.request.method': incoming.method, 'broker.function': incoming.route },
        async (span) => {
          const answer = await run();
          const status = Number(answer.status ?? 200);
          span.setAttribute('http.response.status_code', status);
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          return answer;
        },
        SpanKind.SERVER,
        parent,
      );
    },

    async vend<T extends Vend>(connection: string, run: () => Promise<T>): Promise<T> {
      const started = performance.now();
      const attrs = connectionAttr(connection);
      try {
        const vended = await run();
        tokenRequests.add(1, { ...attrs, served: vended.served });
        tokenDuration.record(performance.now() - started, { served: vended.served });
        return vended;
      } catch (err) {
        tokenRequests.add(1, { ...attrs, served: 'error', code: codeOf(err) });
        tokenDuration.record(performance.now() - started, { served: 'error' });
        throw err;
      }
    },

    rotationPass(run) {
      return inSpan('rotation pass', {}, async () => {
        const started = performance.now();
        try {
          return await run();
        } finally {
          rotationDuration.record((performance.now() - started) / 1000);
          await readView();
        }
      });
    },

    lock(lock: RefreshLock): RefreshLock {
      return {
        crossInstance: lock.crossInstance,
        withLock: (key, fn) =>
          inSpan('lock', connectionAttr(key), (span) => {
            const waited = performance.now();
            return lock.withLock(key, () => {
              span.addEvent('acquired', { 'broker.lock.wait_ms': performance.now() - waited });
              return fn();
            });
          }),
      };
    },

    store(store: SecretStore): SecretStore {
      const traced = new Map<PropertyKey, unknown>();
      for (const method of STORE_METHODS) {
        const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
        // The secret's name is not secret (`rt-{connection}`), but only the operation is recorded.
        traced.set(method, (...args: unknown[]) =>
          inSpan(`store.${method}`, { 'broker.store': store.kind }, () => original(...args)),
        );
      }
      return delegate(store, traced);
    },

    dialects(lookup: DialectLookup): DialectLookup {
      const wrapped = new WeakMap<object, ReturnType<DialectLookup>>();
      return (connection) => {
        const dialect = lookup(connection);
        let traced = wrapped.get(dialect);
        if (!traced) {
          const refresh: typeof dialect.refresh = (params) => {
            const attrs = { connection: connection.id, provider: connection.provider };
            const started = performance.now();
            return inSpan('provider.refresh', attrs, async (span) => {
              let outcome: RefreshOutcome = 'ok';
              try {
                return await dialect.refresh(params);
              } catch (err) {
                outcome = refreshOutcome(err);
                throw err;
              } finally {
                span.setAttribute('outcome', outcome);
                refreshes.add(1, { ...attrs, outcome });
                refreshDuration.record(performance.now() - started, {
                  provider: connection.provider,
                  outcome,
                });
              }
            });
          };
          traced = delegate(dialect, new Map([['refresh', refresh]]));
          wrapped.set(dialect, traced);
        }
        return traced;
      };
    },

    fetch(inner) {
      return (input, init) => {
        const request = input instanceof Request ? input : undefined;
        const url = new URL(request ? request.url : input.toString());
        const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
        // Only where the call goes: a path or query may carry a tenant, a code or a key.
        const attrs = {
          'http.request.method': method,
          'server.address': url.hostname,
          'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
        };
        return inSpan(
          method,
          attrs,
          async (span) => {
            const headers = new Headers(init?.headers ?? request?.headers);
            propagator.inject(context.active(), headers, headerSetter);
            const response = await inner(input, { ...init, headers });
            span.setAttribute('http.response.status_code', response.status);
            if (response.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
            return response;
          },
          SpanKind.CLIENT,
        );
      };
    },

    watch(read) {
      health = read;
    },
    flush: () => deps.flush(),
    shutdown: () => deps.shutdown(),
  };
}

/** `target` with some members replaced; every other member is the target's own, bound to it. */
function delegate<T extends object>(target: T, replaced: Map<PropertyKey, unknown>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (replaced.has(prop)) return replaced.get(prop);
      const value: unknown = Reflect.get(t, prop, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

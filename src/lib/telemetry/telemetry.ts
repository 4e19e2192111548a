import type { Connection } from '../config/connections.js';
import type { ConnectionHealth } from '../health/status-service.js';
import type { RefreshLock } from '../lock/lock.js';
import type { ProviderDialect } from '../providers/provider.js';
import type { SecretStore } from '../store/secret-store.js';

/** How the broker finds a connection's provider dialect (the grant service's lookup). */
export type DialectLookup = (connection: Connection) => ProviderDialect;

/** What one HTTP request's server span is named and parented by (docs/telemetry.md). */
export interface IncomingRequest {
  method: string;
  /** The function's name in the route table (`token`, `status`…): bounded, and unlike the URL it holds no key or code. */
  route: string;
  /** W3C `traceparent` / `tracestate` of the caller, or of the Functions host's own span. */
  traceparent?: string | null;
  tracestate?: string | null;
}

/** What a vend reports: how the token was served (the caller and the token itself never leave it). */
export interface Vend {
  served: 'cache' | 'refresh';
}

/**
 * The telemetry port (docs/design.md, "Telemetry"): OpenTelemetry metrics and traces when an exporter
 * is configured, nothing otherwise. The services never see OpenTelemetry: the composition root wraps
 * the ports they use (store, lock, provider dialects, provider fetch) and the adapters wrap requests,
 * vends and rotation passes. Nothing here may carry a token, secret, account or caller id.
 */
export interface Telemetry {
  /** False for the no-op: callers may skip work that only feeds telemetry. */
  readonly enabled: boolean;
  /** Runs one HTTP request inside a server span; `run`'s answer gives the span its status code. */
  request<T extends { status?: number | string }>(
    incoming: IncomingRequest,
    run: () => Promise<T>,
  ): Promise<T>;
  /** One `/api/token` vend: `broker.token.requests` and `broker.token.duration`, error codes included. */
  vend<T extends Vend>(connection: string, run: () => Promise<T>): Promise<T>;
  /** One rotation pass in its own span, timed in `broker.rotation.duration`; the gauges' view follows it. */
  rotationPass<T>(run: () => Promise<T>): Promise<T>;
  /** The lock with a `lock` span around every hold (waiting included). */
  lock(lock: RefreshLock): RefreshLock;
  /** The store with a span per read and write. */
  store(store: SecretStore): SecretStore;
  /** Dialects whose `refresh` is a `provider.refresh` span, counted in `broker.refreshes`. */
  dialects(lookup: DialectLookup): DialectLookup;
  /** Exports what is buffered now (tests; a host about to stop). */
  flush(): Promise<void>;
  /** A fetch that carries the current `traceparent` to the provider, in a client span per attempt. */
  fetch(fetch: typeof globalThis.fetch): typeof globalThis.fetch;
  /** Where the gauges (`broker.connections`, `broker.deadline.days`) read the connections' health from. */
  watch(health: () => Promise<ConnectionHealth[]>): void;
  /** Flushes what is buffered (bounded in time); the host calls it on the way out. */
  shutdown(): Promise<void>;
}

/** No exporter configured: every wrapper is the identity and nothing is measured. */
export const noTelemetry: Telemetry = {
  enabled: false,
  request: (_incoming, run) => run(),
  vend: (_connection, run) => run(),
  rotationPass: (run) => run(),
  lock: (lock) => lock,
  store: (store) => store,
  dialects: (lookup) => lookup,
  fetch: (fetch) => fetch,
  watch: () => {},
  flush: async () => {},
  shutdown: async () => {},
};

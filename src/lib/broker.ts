import { type CallerGate, callerGate } from './auth/caller-gate.js';
import { PersonAuth } from './auth/person-auth.js';
import { type Clock, systemClock } from './clock.js';
import { ConnectionCatalog } from './config/catalog.js';
import type { Connection } from './config/connections.js';
import type { Settings } from './config/settings.js';
import { ConsentService } from './consent/consent-service.js';
import { SealKeyProvider } from './consent/seal-key.js';
import { AlertWebhook, type AlertWebhookOptions } from './events/alert-webhook.js';
import { ConnectionEvents } from './events/connection-events.js';
import { CallerActivity } from './health/caller-activity.js';
import { StatusService } from './health/status-service.js';
import type { RefreshLock } from './lock/lock.js';
import { openLock } from './lock/open-lock.js';
import { createLogger, type Logger } from './logger.js';
import {
  type ManagedIdentityCredentialFactory,
  ManagedIdentityTokens,
} from './providers/managed-identity.js';
import { assertProvidersSupported, createDialectLookup } from './providers/registry.js';
import { RotationService } from './rotation/rotation-service.js';
import { openStore } from './store/open-store.js';
import type { SecretStore } from './store/secret-store.js';
import { openTelemetry, type TelemetryFactory } from './telemetry/open.js';
import type { Telemetry } from './telemetry/telemetry.js';
import { GrantService } from './tokens/grant-service.js';
import { GrantStore } from './tokens/grant-store.js';
import { TokenService } from './tokens/token-service.js';

/** Everything the function adapters call; built once per process by `createBroker`. */
export interface Broker {
  settings: Settings;
  connections: ConnectionCatalog;
  store: SecretStore;
  clock: Clock;
  logger: Logger;
  grants: GrantService;
  tokens: TokenService;
  consent: ConsentService;
  rotation: RotationService;
  status: StatusService;
  /** Who is asking for a token (DESIGN.md, "Who may ask"), and who asked last. */
  callers: CallerGate;
  callerActivity: CallerActivity;
  /** Who may open the human routes. */
  people: PersonAuth;
  /** State-change log lines and webhook events; `events.drain()` waits for deliveries under way. */
  events: ConnectionEvents;
  /** Metrics and traces (docs/telemetry.md); a no-op unless an exporter is configured. */
  telemetry: Telemetry;
}

export interface BrokerOptions {
  settings: Settings;
  connections: Map<string, Connection>;
  /** Tests inject fakes here; production takes the defaults. */
  store?: SecretStore;
  clock?: Clock;
  logger?: Logger;
  fetch?: typeof fetch;
  lock?: RefreshLock;
  providerTimeoutMs?: number;
  providerMaxRetries?: number;
  /** How soon an unknown `kid` may refetch the tenant's keys (default 30 s); tests of a key rollover shorten it. */
  callerKeysCooldownMs?: number;
  /** The webhook sender's `fetch`, timeout and backoff (tests); the URL is `ALERT_WEBHOOK_URL`. */
  alerts?: Omit<AlertWebhookOptions, 'url' | 'logger'>;
  /** The credential of `managedIdentity` connections; default the SDK's `ManagedIdentityCredential`. */
  managedIdentityCredential?: ManagedIdentityCredentialFactory;
  /** How long getting a managed identity token may take (default 5 s). */
  managedIdentityTimeoutMs?: number;
  /** Where telemetry goes; default from `APPLICATIONINSIGHTS_CONNECTION_STRING` / `OTEL_*` (none when unset). */
  telemetry?: TelemetryFactory;
}

/** The composition root: settings in, services out. */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const { settings } = options;
  assertProvidersSupported(options.connections.values());
  const connections = new ConnectionCatalog(options.connections.values());
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger();
  const telemetry = await (options.telemetry ?? openTelemetry())({
    logger,
    catalog: connections,
    now: () => clock.now(),
  });
  const store = telemetry.store(options.store ?? (await openStore(settings)));
  const grantStore = new GrantStore(store, { clock });
  const certificateExpiries = new Map<string, Date>();
  const dialect = createDialectLookup({
    store,
    fetch: telemetry.fetch(options.fetch ?? globalThis.fetch),
    clock,
    logger,
    timeoutMs: options.providerTimeoutMs,
    maxRetries: options.providerMaxRetries,
    managedIdentity: new ManagedIdentityTokens({
      factory: options.managedIdentityCredential,
      clock,
      timeoutMs: options.managedIdentityTimeoutMs,
    }),
    certificateExpiries,
  });
  const events = new ConnectionEvents({
    publicUrl: settings.publicUrl,
    clock,
    logger,
    webhook: settings.alertWebhookUrl
      ? new AlertWebhook({
          url: settings.alertWebhookUrl,
          logger,
          fetch: options.fetch,
          ...options.alerts,
        })
      : undefined,
  });
  const grants = new GrantService({
    grants: grantStore,
    lock: telemetry.lock(options.lock ?? (await openLock(settings, logger))),
    // Every refresh passes the grant service: there it is timed, counted and traced.
    dialect: telemetry.dialects(dialect),
    clock,
    logger,
    events,
    publicUrl: settings.publicUrl,
  });
  const tokens = new TokenService({
    catalog: connections,
    grants,
    clock,
    logger,
    refreshAheadMs: settings.refreshAheadMs,
  });
  const callerActivity = new CallerActivity(clock);
  const consent = new ConsentService({
    catalog: connections,
    tokens,
    grants,
    dialect,
    sealKey: new SealKeyProvider(store),
    clock,
    logger,
  });
  const status = new StatusService({
    catalog: connections,
    store,
    clock,
    warnBeforeMs: settings.warnBeforeMs,
    callerActivity,
    publicUrl: settings.publicUrl,
    certificateExpiries,
  });
  telemetry.watch(() => status.health());
  const rotation = new RotationService({
    catalog: connections,
    store,
    status,
    tokens,
    clock,
    logger,
    events,
    concurrency: settings.rotationConcurrency,
  });
  return {
    settings,
    connections,
    store,
    clock,
    logger,
    grants,
    tokens,
    consent,
    rotation,
    status,
    callers: callerGate(settings.callerAuth, clock, {
      fetch: options.fetch,
      cooldownMs: options.callerKeysCooldownMs,
    }),
    callerActivity,
    people: new PersonAuth(settings.adminAuth),
    events,
    telemetry,
  };
}

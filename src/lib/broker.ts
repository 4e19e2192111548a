import { type AdminGate, adminGate } from './auth/admin-gate.js';
import { type CallerGate, callerGate } from './auth/caller-gate.js';
import { PersonAuth } from './auth/person-auth.js';
import { type Clock, systemClock } from './clock.js';
import { ConnectionCatalog } from './config/catalog.js';
import type { Connection, TemplateConfig } from './config/connections.js';
import { loadConnections } from './config/load.js';
import type { Settings } from './config/settings.js';
import { ConsentService } from './consent/consent-service.js';
import { DeviceService } from './consent/device-service.js';
import { SealKeyProvider } from './consent/seal-key.js';
import { DefinitionService } from './definitions/definition-service.js';
import type { DefinitionStore } from './definitions/definition-store.js';
import { openDefinitions } from './definitions/open-definitions.js';
import { AlertWebhook, type AlertWebhookOptions } from './events/alert-webhook.js';
import { ConnectionEvents } from './events/connection-events.js';
import { CallerActivity } from './health/caller-activity.js';
import { StatusService } from './health/status-service.js';
import { InvitationService } from './invitations/invitation-service.js';
import type { InvitationStore } from './invitations/invitation-store.js';
import { openInvitationStore } from './invitations/open-invitations.js';
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
import { noTelemetry, type Telemetry } from './telemetry/telemetry.js';
import { AppOnlyService } from './tokens/app-only-service.js';
import { AppOnlyStateStore } from './tokens/app-only-state.js';
import { type DialectLookup, GrantService } from './tokens/grant-service.js';
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
  /** Who is asking for a token (docs/design.md, "Who may ask"), and who asked last. */
  callers: CallerGate;
  callerActivity: CallerActivity;
  /** Who may open the human routes. */
  people: PersonAuth;
  /** Who may use the admin routes (connections, templates, invitations), and as whom (`by`). */
  admins: AdminGate;
  /** The admin API's reads and writes of both sources (docs/connections.md). */
  definitions: DefinitionService;
  /** State-change log lines and webhook events; `events.drain()` waits for deliveries under way. */
  events: ConnectionEvents;
  /** Links a mailbox owner consents from (docs/design.md, "Invitations"). */
  invitations: InvitationService;
  /** Metrics and traces (docs/telemetry.md); a no-op unless an exporter is configured. */
  telemetry: Telemetry;
}

/**
 * What a host or a test may put in place of the production defaults (ports, timings), passed whole
 * from the e2e harness through the embedded host (`RunLocalOptions.overrides`) to here.
 */
export interface BrokerOverrides {
  store?: SecretStore;
  /** Managed connections and templates; default per `openDefinitions`. */
  definitionStore?: DefinitionStore;
  /** How often other instances' definition changes are picked up (default 15 s). */
  catalogSyncIntervalMs?: number;
  clock?: Clock;
  logger?: Logger;
  fetch?: typeof fetch;
  lock?: RefreshLock;
  /** The provider dialects; default the registry's (tests: a scripted fake provider). */
  dialect?: DialectLookup;
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
  /** Where invitations live; default Table Storage of `AzureWebJobsStorage`, else the data folder. */
  invitationStore?: InvitationStore;
  /** Where telemetry goes; default from `APPLICATIONINSIGHTS_CONNECTION_STRING` / `OTEL_*` (none when unset). */
  telemetry?: TelemetryFactory;
}

export interface BrokerOptions extends BrokerOverrides {
  settings: Settings;
  /** The declared connections (file / app setting), resolved. */
  connections: Map<string, Connection>;
  /** The declared connections as written (default: derived from `connections`), for the admin API. */
  declaredDefinitions?: Map<string, Record<string, unknown>>;
  /** The declared templates. */
  declaredTemplates?: Map<string, TemplateConfig>;
}

/** The composition root: settings in, services out. Opens the store and the lock, then wires. */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const logger = options.logger ?? createLogger();
  const clock = options.clock ?? systemClock;
  // The telemetry names only connections the catalog knows (bounded attributes); the catalog is
  // wired below, after the ports the telemetry wraps, so it is handed over by reference.
  let catalog: ConnectionCatalog | undefined;
  const telemetry = await (options.telemetry ?? openTelemetry())({
    logger,
    catalog: { peek: (id) => catalog?.peek(id) },
    now: () => clock.now(),
  });
  const broker = wireBroker({
    ...options,
    logger,
    store: telemetry.store(options.store ?? (await openStore(options.settings))),
    lock: telemetry.lock(options.lock ?? (await openLock(options.settings, logger))),
    definitionStore: options.definitionStore ?? (await openDefinitions(options.settings, clock)),
    invitationStore: options.invitationStore ?? (await openInvitationStore(options.settings)),
    instruments: telemetry,
  });
  catalog = broker.connections;
  return broker;
}

/**
 * A broker of what the settings declare (`BROKER_CONNECTIONS` or the connections file): the Functions
 * entry and the CLI both start one so. The embedded host does not: it may add the sandbox first.
 */
export async function createDeclaredBroker(
  settings: Settings,
  overrides: BrokerOverrides = {},
): Promise<Broker> {
  const declared = loadConnections(settings);
  return createBroker({
    ...overrides,
    settings,
    connections: declared.connections,
    declaredDefinitions: declared.definitions,
    declaredTemplates: declared.templates,
  });
}

/**
 * Every service, built once and in one place, over ports already open: production (`createBroker`),
 * the embedded host (through it) and the service tests (test/fakes/services.ts, over fakes).
 */
export function wireBroker(
  options: BrokerOptions & {
    store: SecretStore;
    lock: RefreshLock;
    logger: Logger;
    definitionStore: DefinitionStore;
    invitationStore: InvitationStore;
    /** The telemetry, already open (default none). */
    instruments?: Telemetry;
  },
): Broker {
  const { settings, store, logger, definitionStore } = options;
  const telemetry = options.instruments ?? noTelemetry;
  assertProvidersSupported(options.connections.values());
  const clock = options.clock ?? systemClock;
  const declaredTemplates = options.declaredTemplates ?? new Map<string, TemplateConfig>();
  const connections = new ConnectionCatalog(options.connections.values(), {
    declaredTemplates,
    definitions: definitionStore,
    settings,
    clock,
    logger,
    syncIntervalMs: options.catalogSyncIntervalMs,
  });
  const grantStore = new GrantStore(store, { clock });
  const certificateExpiries = new Map<string, Date>();
  const dialect =
    options.dialect ??
    createDialectLookup({
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
  const invitations = new InvitationService({
    store: options.invitationStore,
    catalog: connections,
    clock,
    logger,
    publicUrl: settings.publicUrl,
  });
  const events = new ConnectionEvents({
    publicUrl: settings.publicUrl,
    clock,
    logger,
    // A fresh 7-day link, no replace: only the pinned account can complete it (docs/design.md, "Invitations").
    reconnectLink: settings.alertReconnectLinks
      ? async (connection) => (await invitations.create(connection.id, {}, { name: 'alert' })).url
      : undefined,
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
    lock: options.lock,
    // Every refresh passes the grant service: there it is timed, counted and traced.
    dialect: telemetry.dialects(dialect),
    clock,
    logger,
    events,
  });
  const tokens = new TokenService({
    catalog: connections,
    grants,
    clock,
    logger,
    refreshAheadMs: settings.refreshAheadMs,
    appOnly: new AppOnlyService({
      dialect,
      state: new AppOnlyStateStore(store),
      clock,
      logger,
      events,
    }),
  });
  const callerActivity = new CallerActivity(clock);
  const consentDeps = {
    catalog: connections,
    tokens,
    grants,
    dialect,
    sealKey: new SealKeyProvider(store),
    clock,
    logger,
    invitations,
  };
  const consent = new ConsentService(consentDeps, new DeviceService(consentDeps));
  const status = new StatusService({
    catalog: connections,
    store,
    clock,
    warnBeforeMs: settings.warnBeforeMs,
    callerActivity,
    publicUrl: settings.publicUrl,
    certificateExpiries,
    logger,
  });
  // The gauges read the status page's list: kept past one page, not every connection per export.
  telemetry.watch(() => status.healthForPage());
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
  // A connection deleted or changed anywhere loses its cached tokens here (a template change applies
  // from the next refresh: its connections' tokens were minted for the same grant).
  connections.onChange((change) => {
    if (change.kind !== 'connection') return;
    tokens.invalidate(change.name);
    if (change.removed) {
      grantStore.forget(change.name);
      callerActivity.forget(change.name);
    }
  });
  // Invitations: a deleted connection's links go with it, so an id created again inherits none.
  connections.onChange((change) => {
    if (change.kind === 'connection' && change.removed) {
      invitations.revokeAll(change.name, { name: 'connection.deleted' }).catch((err: unknown) =>
        logger.warn('invitation.revoke_failed', {
          connection: change.name,
          reason: err instanceof Error ? err.name : 'error',
        }),
      );
    }
  });
  const callers = callerGate(settings.callerAuth, clock, {
    fetch: options.fetch,
    cooldownMs: options.callerKeysCooldownMs,
  });
  const people = new PersonAuth(settings.adminAuth);
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
    callers,
    callerActivity,
    people,
    admins: adminGate(settings.adminAuth, people, callers),
    definitions: new DefinitionService({
      catalog: connections,
      store: definitionStore,
      secrets: store,
      declaredDefinitions: options.declaredDefinitions ?? asWritten(options.connections),
      declaredTemplates,
      logger,
    }),
    events,
    invitations,
    telemetry,
  };
}

/** Declared connections as written, for callers (tests) that only have them resolved. */
function asWritten(connections: Map<string, Connection>): Map<string, Record<string, unknown>> {
  return new Map(
    [...connections].map(([id, c]) => {
      const { id: _id, redirectUri: _r, rotateAfterMs: _a, template: _t, ...config } = c;
      return [id, config as Record<string, unknown>];
    }),
  );
}

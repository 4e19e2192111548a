import { type Clock, systemClock } from './clock.js';
import type { Connection } from './config/connections.js';
import type { Settings } from './config/settings.js';
import { ConsentService } from './consent/consent-service.js';
import { SealKeyProvider } from './consent/seal-key.js';
import { StatusService } from './health/status-service.js';
import { createLogger, type Logger } from './logger.js';
import { assertProvidersSupported, createDialectLookup } from './providers/registry.js';
import { RotationService } from './rotation/rotation-service.js';
import { openStore } from './store/open-store.js';
import type { SecretStore } from './store/secret-store.js';
import { GrantService } from './tokens/grant-service.js';
import { GrantStore } from './tokens/grant-store.js';
import type { RefreshLock } from './tokens/lock.js';
import { openLock } from './tokens/open-lock.js';
import { TokenService } from './tokens/token-service.js';

/** Everything the function adapters call; built once per process by `createBroker`. */
export interface Broker {
  settings: Settings;
  connections: Map<string, Connection>;
  store: SecretStore;
  clock: Clock;
  logger: Logger;
  grants: GrantService;
  tokens: TokenService;
  consent: ConsentService;
  rotation: RotationService;
  status: StatusService;
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
}

/** The composition root: settings in, services out. */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const { settings, connections } = options;
  assertProvidersSupported(connections.values());
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger();
  const store = options.store ?? (await openStore(settings));
  const grantStore = new GrantStore(store);
  const dialect = createDialectLookup({
    store,
    fetch: options.fetch ?? globalThis.fetch,
    clock,
    logger,
    timeoutMs: options.providerTimeoutMs,
    maxRetries: options.providerMaxRetries,
  });
  let tokens: TokenService | undefined;
  const grants = new GrantService({
    grants: grantStore,
    lock: options.lock ?? (await openLock(settings, logger)),
    dialect,
    clock,
    logger,
    onDeadGrant: (id) => tokens?.invalidate(id),
  });
  tokens = new TokenService({ connections, grants, clock, logger, refreshAheadMs: settings.refreshAheadMs });
  const consent = new ConsentService({
    tokens,
    grants,
    dialect,
    sealKey: new SealKeyProvider(store),
    clock,
    logger,
  });
  const status = new StatusService({ connections, store, clock, warnBeforeMs: settings.warnBeforeMs });
  const rotation = new RotationService({
    connections,
    store,
    status,
    grants,
    tokens,
    clock,
    logger,
    concurrency: settings.rotationConcurrency,
  });
  return { settings, connections, store, clock, logger, grants, tokens, consent, rotation, status };
}

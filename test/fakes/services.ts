import { ManualClock } from '../../src/lib/clock.js';
import { ConnectionCatalog } from '../../src/lib/config/catalog.js';
import type { Connection } from '../../src/lib/config/connections.js';
import { ConsentService } from '../../src/lib/consent/consent-service.js';
import { SealKeyProvider } from '../../src/lib/consent/seal-key.js';
import { StatusService } from '../../src/lib/health/status-service.js';
import { InProcessLock } from '../../src/lib/lock/lock.js';
import { RotationService } from '../../src/lib/rotation/rotation-service.js';
import { refreshTokenSecretName, type SecretStore } from '../../src/lib/store/secret-store.js';
import { GrantService } from '../../src/lib/tokens/grant-service.js';
import { GrantStore, type GrantTags } from '../../src/lib/tokens/grant-store.js';
import { TokenService } from '../../src/lib/tokens/token-service.js';
import { memoryLogger } from '../support/logs.js';
import { FakeProvider } from './fake-provider.js';
import { MemorySecretStore } from './memory-store.js';

export const DAY_MS = 86_400_000;
/** Where every service test's clock starts. */
export const T0 = Date.UTC(2026, 0, 1);

export interface ServiceOptions {
  refreshAheadMs?: number;
  warnBeforeMs?: number;
  concurrency?: number;
  /** Another store in place of the in-memory one (the Key Vault store on its simulator). */
  store?: SecretStore;
}

/**
 * The broker's services wired as `createBroker` wires them, on fakes for every port: the in-memory
 * store, the scripted provider, the in-process lock, a manual clock and a memory logger.
 */
export function services(connections: Connection[], options: ServiceOptions = {}) {
  const clock = new ManualClock(T0);
  const store = options.store ?? new MemorySecretStore(() => clock.now());
  const provider = new FakeProvider();
  const log = memoryLogger();
  const logger = log.logger;
  const catalog = new ConnectionCatalog(connections);
  const grantStore = new GrantStore(store, { clock });
  const grants = new GrantService({
    grants: grantStore,
    lock: new InProcessLock(),
    dialect: provider.lookup,
    clock,
    logger,
  });
  const tokens = new TokenService({
    catalog,
    grants,
    clock,
    logger,
    refreshAheadMs: options.refreshAheadMs ?? 5 * 60_000,
  });
  const consent = new ConsentService({
    catalog,
    tokens,
    grants,
    dialect: provider.lookup,
    sealKey: new SealKeyProvider(store),
    clock,
    logger,
  });
  const status = new StatusService({
    catalog,
    store,
    clock,
    warnBeforeMs: options.warnBeforeMs ?? 14 * DAY_MS,
    publicUrl: 'https://broker.example',
  });
  const rotation = new RotationService({
    catalog,
    store,
    status,
    tokens,
    clock,
    logger,
    concurrency: options.concurrency ?? 4,
  });

  /** Stores a grant as a past consent would have left it (no provider call). */
  const seedGrant = (connectionId: string, refreshToken: string, tags: Partial<GrantTags> = {}) => {
    const at = new Date(clock.now()).toISOString();
    const all: Record<string, string> = {
      status: 'connected',
      account: 'ana@contoso.com',
      consentedAt: at,
      refreshedAt: at,
    };
    for (const [k, v] of Object.entries(tags)) if (v !== undefined) all[k] = v;
    return store.setSecret(refreshTokenSecretName(connectionId), refreshToken, { tags: all });
  };
  /** The latest stored grant of a connection, as the store has it. */
  const storedGrant = (connectionId: string) => store.getSecret(refreshTokenSecretName(connectionId));

  return {
    clock,
    store,
    provider,
    logs: log.lines,
    catalog,
    grants,
    tokens,
    consent,
    status,
    rotation,
    seedGrant,
    storedGrant,
  };
}

/** Lets every promise chain that is ready to run, run (no time passes on any clock). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

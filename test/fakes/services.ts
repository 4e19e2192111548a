import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wireBroker } from '../../src/lib/broker.js';
import { ManualClock } from '../../src/lib/clock.js';
import type { Connection } from '../../src/lib/config/connections.js';
import { loadSettings } from '../../src/lib/config/settings.js';
import { FileInvitationStore } from '../../src/lib/invitations/file-invitation-store.js';
import { InProcessLock } from '../../src/lib/lock/lock.js';
import { refreshTokenSecretName, type SecretStore } from '../../src/lib/store/secret-store.js';
import type { GrantTags } from '../../src/lib/tokens/grant-store.js';
import { memoryLogger } from '../support/logs.js';
import { FakeProvider } from './fake-provider.js';
import { MemoryDefinitionStore } from './memory-definitions.js';
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
 * The broker's services wired by the composition root itself (`wireBroker`, the body of
 * `createBroker`), on fakes for every port: the in-memory store, the scripted provider, the
 * in-process lock, a manual clock and a memory logger.
 */
export function services(connections: Connection[], options: ServiceOptions = {}) {
  const clock = new ManualClock(T0);
  const store = options.store ?? new MemorySecretStore(() => clock.now());
  const provider = new FakeProvider();
  const log = memoryLogger();
  const settings = {
    ...loadSettings({ BROKER_PUBLIC_URL: 'https://broker.example' }),
    refreshAheadMs: options.refreshAheadMs ?? 5 * 60_000,
    warnBeforeMs: options.warnBeforeMs ?? 14 * DAY_MS,
    rotationConcurrency: options.concurrency ?? 4,
  };
  const broker = wireBroker({
    settings,
    connections: new Map(connections.map((c) => [c.id, c])),
    store,
    lock: new InProcessLock(),
    clock,
    logger: log.logger,
    dialect: provider.lookup,
    definitionStore: new MemoryDefinitionStore(() => clock.now()),
    // Not written by these tests (no invitation route runs here); the folder is made on first use.
    invitationStore: new FileInvitationStore(join(tmpdir(), `broker-services-${randomUUID()}`)),
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
    broker,
    catalog: broker.connections,
    grants: broker.grants,
    tokens: broker.tokens,
    consent: broker.consent,
    status: broker.status,
    rotation: broker.rotation,
    seedGrant,
    storedGrant,
  };
}

/** Lets every promise chain that is ready to run, run (no time passes on any clock). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import { type Connection, credentialSecretName, isAppOnly } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import type { SecretStore } from '../store/secret-store.js';
import { APP_ONLY_PREFIX, type AppOnlyState, appOnlyFromTags } from '../tokens/app-only-state.js';
import { fromTags, type GrantTags } from '../tokens/grant-store.js';
import { appOnlyHealth } from './app-only-health.js';
import type { CallerActivity, CallerUse } from './caller-activity.js';
import { type Deadline, forecastDeadlines } from './deadlines.js';
import { HealthCache } from './health-cache.js';
import { remedyFor } from './remedies.js';
import { STATUS_PAGE_SIZE } from './status-page-size.js';

export type ConnectionStatus = 'connected' | 'needs_consent' | 'not_connected';

export interface ConnectionHealth {
  id: string;
  provider: Connection['provider'];
  flow: string;
  status: ConnectionStatus;
  account: string | null;
  consentedAt: string | null;
  refreshedAt: string | null;
  lastError: string | null;
  hardExpiresAt?: string;
  /** Earliest first. */
  deadlines: Deadline[];
  nextDeadline: Deadline | null;
  /** True when `nextDeadline` is within `WARN_BEFORE` (or past). */
  warning: boolean;
  /** Who got this connection's tokens from this instance lately, newest first. */
  callers: CallerUse[];
  /** What a person does about it; null when nothing is wrong (docs/design.md, "Telling people what to do"). */
  remedy: Remedy | null;
}

/** Everything health needs, from one list call on the store (tags and expiry dates, never values). */
export interface StoreSnapshot {
  grants: Map<string, GrantTags>;
  /** The state records of app-only connections (`broker-app-{id}`), by connection id. */
  appOnly: Map<string, AppOnlyState>;
  /** Secret name (lowercase) → `expires` attribute. */
  expiries: Map<string, Date>;
}

export async function readSnapshot(store: SecretStore): Promise<StoreSnapshot> {
  const grants = new Map<string, GrantTags>();
  const appOnly = new Map<string, AppOnlyState>();
  const expiries = new Map<string, Date>();
  for (const p of await store.listSecrets()) {
    if (!p.enabled) continue;
    const name = p.name.toLowerCase();
    if (name.startsWith('rt-')) grants.set(name.slice(3), fromTags(p.tags));
    if (name.startsWith(APP_ONLY_PREFIX))
      appOnly.set(name.slice(APP_ONLY_PREFIX.length), appOnlyFromTags(p.tags));
    if (p.expiresOn) expiries.set(p.name.toLowerCase(), p.expiresOn);
  }
  return { grants, appOnly, expiries };
}

/** What the snapshot holds for a connection: its grant's tags, or an app-only connection's state. */
export function stateIn(snapshot: StoreSnapshot, c: Connection): GrantTags | AppOnlyState | undefined {
  return isAppOnly(c) ? snapshot.appOnly.get(c.id) : snapshot.grants.get(c.id);
}

/** Every connection's health (docs/design.md, "Routes": `GET /api/status`). */
export class StatusService {
  constructor(
    private readonly deps: {
      catalog: ConnectionCatalog;
      store: SecretStore;
      clock: Clock;
      warnBeforeMs: number;
      callerActivity?: CallerActivity;
      /** `BROKER_PUBLIC_URL`, for the links in remedies. */
      publicUrl: string;
      /** Certificate `notAfter` by secret name (lowercase), for stores whose secret carries no `expires`. */
      certificateExpiries?: Map<string, Date>;
    },
  ) {
    // A connection added, changed or deleted here shows on this instance's page at once.
    deps.catalog.onChange?.(() => this.pageCache.clear());
  }

  /** The status page's list: kept for a while once longer than a page (`health-cache.ts`). */
  private readonly pageCache = new HealthCache(() => this.health(), STATUS_PAGE_SIZE);

  /** Every connection's health for the status page and `/api/status`; see `HealthCache`. */
  healthForPage(): Promise<ConnectionHealth[]> {
    return this.pageCache.get();
  }

  get warnBeforeMs(): number {
    return this.deps.warnBeforeMs;
  }

  async health(snapshot?: StoreSnapshot): Promise<ConnectionHealth[]> {
    const read = snapshot ?? (await readSnapshot(this.deps.store));
    return (await this.deps.catalog.all()).map((c) => this.healthOf(c, stateIn(read, c), read.expiries));
  }

  healthOf(
    c: Connection,
    state: GrantTags | AppOnlyState | undefined,
    expiries: Map<string, Date>,
  ): ConnectionHealth {
    const secretName = credentialSecretName(c.credential)?.toLowerCase();
    const expiresOn = secretName
      ? (expiries.get(secretName) ?? this.deps.certificateExpiries?.get(secretName))
      : undefined;
    const now = this.deps.clock.now();
    if (isAppOnly(c)) {
      const app = state && 'appOnly' in state ? state : undefined;
      const { warnBeforeMs, publicUrl } = this.deps;
      return {
        ...appOnlyHealth(c, app, forecastDeadlines(c, undefined, expiresOn), {
          now,
          warnBeforeMs,
          publicUrl,
        }),
        callers: this.deps.callerActivity?.of(c.id) ?? [],
      };
    }
    const tags = state && !('appOnly' in state) ? state : undefined;
    const deadlines = forecastDeadlines(c, tags, expiresOn);
    const nextDeadline = deadlines[0] ?? null;
    const health: ConnectionHealth = {
      id: c.id,
      provider: c.provider,
      flow: 'flow' in c ? c.flow : 'authorization_code',
      status: tags ? tags.status : 'not_connected',
      account: tags?.account ?? null,
      consentedAt: tags?.consentedAt ?? null,
      refreshedAt: tags?.refreshedAt ?? null,
      lastError: tags?.lastError ?? null,
      deadlines,
      nextDeadline,
      warning: nextDeadline !== null && Date.parse(nextDeadline.at) - now <= this.deps.warnBeforeMs,
      remedy: remedyFor(
        { tags, deadlines },
        { connection: c, publicUrl: this.deps.publicUrl, account: tags?.account },
        { now, warnBeforeMs: this.deps.warnBeforeMs },
      ),
      callers: this.deps.callerActivity?.of(c.id) ?? [],
    };
    if (tags?.hardExpiresAt) health.hardExpiresAt = tags.hardExpiresAt;
    return health;
  }
}

import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import { type Connection, credentialSecretName } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import type { SecretStore } from '../store/secret-store.js';
import { fromTags, type GrantTags } from '../tokens/grant-store.js';
import type { CallerActivity, CallerUse } from './caller-activity.js';
import { type Deadline, forecastDeadlines } from './deadlines.js';
import { remedyFor } from './remedies.js';

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
  /** What a person does about it; null when nothing is wrong (DESIGN.md, "Telling people what to do"). */
  remedy: Remedy | null;
}

/** Everything health needs, from one list call on the store (tags and expiry dates, never values). */
export interface StoreSnapshot {
  grants: Map<string, GrantTags>;
  /** Secret name (lowercase) → `expires` attribute. */
  expiries: Map<string, Date>;
}

export async function readSnapshot(store: SecretStore): Promise<StoreSnapshot> {
  const grants = new Map<string, GrantTags>();
  const expiries = new Map<string, Date>();
  for (const p of await store.listSecrets()) {
    if (!p.enabled) continue;
    if (p.name.toLowerCase().startsWith('rt-')) grants.set(p.name.slice(3).toLowerCase(), fromTags(p.tags));
    if (p.expiresOn) expiries.set(p.name.toLowerCase(), p.expiresOn);
  }
  return { grants, expiries };
}

/** Every connection's health (DESIGN.md, `GET /api/status`). */
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
  ) {}

  get warnBeforeMs(): number {
    return this.deps.warnBeforeMs;
  }

  async health(snapshot?: StoreSnapshot): Promise<ConnectionHealth[]> {
    const { grants, expiries } = snapshot ?? (await readSnapshot(this.deps.store));
    return (await this.deps.catalog.all()).map((c) => this.healthOf(c, grants.get(c.id), expiries));
  }

  healthOf(c: Connection, tags: GrantTags | undefined, expiries: Map<string, Date>): ConnectionHealth {
    const secretName = credentialSecretName(c.credential)?.toLowerCase();
    const expiresOn = secretName
      ? (expiries.get(secretName) ?? this.deps.certificateExpiries?.get(secretName))
      : undefined;
    const deadlines = forecastDeadlines(c, tags, expiresOn);
    const nextDeadline = deadlines[0] ?? null;
    const now = this.deps.clock.now();
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

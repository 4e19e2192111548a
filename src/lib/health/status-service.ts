import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import { type Connection, credentialSecretName, isAppOnly } from '../config/connections.js';
import { KeptList } from '../kept-list.js';
import type { Logger } from '../logger.js';
import { mapWithConcurrency } from '../rotation/pool.js';
import { refreshTokenSecretName, type SecretStore } from '../store/secret-store.js';
import {
  APP_ONLY_PREFIX,
  type AppOnlyState,
  appOnlyFromTags,
  appOnlyRecordName,
} from '../tokens/app-only-state.js';
import { fromTags, type GrantTags } from '../tokens/grant-store.js';
import { appOnlyHealth } from './app-only-health.js';
import type { CallerActivity } from './caller-activity.js';
import type { ConnectionHealth } from './connection-health.js';
import { forecastDeadlines } from './deadlines.js';
import { remedyFor } from './remedies.js';
import { digestOf, StatusDigests } from './status-digest.js';
import { STATUS_PAGE_SIZE } from './status-page-size.js';
import { byId, healthAfter, pageOfHealth, type StatusPage, type StatusPageQuery } from './status-paging.js';

export type { ConnectionHealth, ConnectionStatus } from './connection-health.js';

/** Everything health needs, from one list call on the store (tags and expiry dates, never values). */
export interface StoreSnapshot {
  grants: Map<string, GrantTags>;
  /** The state records of app-only connections (`broker-app-{id}`), by connection id. */
  appOnly: Map<string, AppOnlyState>;
  /** Secret name (lowercase) → `expires` attribute. */
  expiries: Map<string, Date>;
}

/** Store reads in flight at once for one page's point reads. */
const POINT_READS = 16;
/** After a page 1 served without listing, when the whole list is read for the next request. */
const LIST_AFTER_MS = 200;

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
      logger?: Pick<Logger, 'warn'>;
    },
  ) {
    this.digests = new StatusDigests(deps.store);
    // A connection added, changed or deleted here shows on this instance's page at once.
    deps.catalog.onChange?.(() => this.pageCache.clear());
  }

  private readonly digests: StatusDigests;
  /** This instance's last whole list fit on one page: no digest to read, the page reads everything. */
  private small = false;

  /** The status page's list: kept for a while once longer than a page (`kept-list.ts`). */
  private readonly pageCache = new KeptList(
    async () => {
      const list = await this.health();
      this.small = list.length <= STATUS_PAGE_SIZE;
      void this.recordDigest(list);
      return list;
    },
    { keepAbove: STATUS_PAGE_SIZE },
  );

  /** Every connection's health for the status page and `/api/status`; see `KeptList`. */
  healthForPage(): Promise<ConnectionHealth[]> {
    return this.pageCache.get();
  }

  /**
   * One page of the status page. Page 1 without a search, on an instance holding no recent list
   * of a deployment past one page, is answered without listing (`firstPageUnlisted`) while the
   * whole list is read in the background for the next request.
   */
  async page(query: StatusPageQuery): Promise<StatusPage> {
    if (query.page === 1 && !query.q?.trim() && !this.small && !this.pageCache.holds()) {
      const quick = await this.firstPageUnlisted(query.size ?? STATUS_PAGE_SIZE);
      if (quick) {
        // Once this answer is out: the listing's synchronous stretches would otherwise delay it.
        setTimeout(() => this.pageCache.get().catch(() => {}), LIST_AFTER_MS).unref();
        return quick;
      }
    }
    return pageOfHealth(await this.healthForPage(), query);
  }

  /**
   * `/api/status?top=` (ids after `after`, by id): from the kept list when this instance holds one,
   * otherwise one page of the catalog and a point read per connection, never the whole store.
   */
  async pageAfter(top: number, after?: string): Promise<{ items: ConnectionHealth[]; next?: string }> {
    const kept = this.pageCache.holds();
    if (kept) return healthAfter(kept, top, after);
    let page: Awaited<ReturnType<ConnectionCatalog['pageById']>>;
    try {
      page = await this.deps.catalog.pageById(top, after);
    } catch {
      // The definition store is down: the whole list serves the declared and those already seen.
      return healthAfter(await this.healthForPage(), top, after);
    }
    const items = await this.healthOfEach(page.connections);
    return page.more && items.length ? { items, next: items[items.length - 1]!.id } : { items };
  }

  /** Stores the digest of a whole list just read (by the page's refresh or a rotation pass). */
  async recordDigest(list: readonly ConnectionHealth[]): Promise<void> {
    try {
      await this.digests.write(digestOf(list, this.deps.clock.now()));
    } catch (err) {
      // The page still works without it (a cold instance then reads everything first).
      this.deps.logger?.warn('status.digest_failed', { error: err instanceof Error ? err.name : 'error' });
    }
  }

  /**
   * Page 1 from the stored digest (`status-digest.ts`): the ids it names as needing a person and
   * the first page by id, each read afresh; the counts are the digest's (`countedAt`). With no
   * digest stored yet (a deployment nobody has read whole: no page's full read, no rotation pass)
   * and more than a page of connections, the first page by id alone, marked `counting`: there are
   * no counts to give, and reading every connection first takes seconds to a minute at 100,000.
   * `undefined` sends the page down the whole list's path: a digest (or, without one, a catalog)
   * within one page, where reading everything is cheap, or a store or catalog that failed, where
   * that path says so (or serves what it knows).
   */
  private async firstPageUnlisted(size: number): Promise<StatusPage | undefined> {
    try {
      const digest = await this.digests.read();
      if (digest && digest.total <= size) return undefined;
      // The catalog's first page by id, unless the digest names a whole page needing a person
      // (a query of 100,000 entities on Azurite, saved); asked alongside the named rows' reads.
      const byIdPage = () => {
        const page = this.deps.catalog.pageById(size);
        page.catch(() => {});
        return page;
      };
      let firstPage = !digest || digest.first.length < size ? byIdPage() : undefined;
      const named = await mapWithConcurrency(digest?.first ?? [], POINT_READS, (id) =>
        this.deps.catalog.find(id),
      );
      // Each row as it is now: one fixed since the digest moves down, one broken since moves up.
      const rows = await this.healthOfEach(named.filter((c): c is Connection => c !== undefined));
      // Some named were fixed since: the page is filled from the first page by id after all.
      if (!firstPage && rows.filter((h) => h.remedy !== null).length < size) firstPage = byIdPage();
      const first = firstPage && (await firstPage);
      if (!digest && !first?.more) return undefined;
      const seen = new Set(rows.map((h) => h.id));
      rows.push(...(await this.healthOfEach((first?.connections ?? []).filter((c) => !seen.has(c.id)))));
      const attention = rows.filter((h) => h.remedy !== null).sort(byId);
      const healthy = rows.filter((h) => h.remedy === null).sort(byId);
      const items = attention.concat(healthy).slice(0, size);
      if (!digest) {
        // Only what these rows say: nothing here may read as a count of the whole deployment.
        const needing = items.filter((h) => h.remedy !== null).length;
        const shown = items.length;
        return { items, total: shown, matched: shown, attention: needing, page: 1, pages: 1, counting: true };
      }
      return {
        items,
        total: digest.total,
        matched: digest.total,
        attention: Math.max(digest.attention, attention.length),
        page: 1,
        pages: Math.max(1, Math.ceil(digest.total / size)),
        countedAt: digest.at,
      };
    } catch {
      // The store or the catalog failed: the whole list's path says so (or serves what it knows).
      return undefined;
    }
  }

  /** The health of each, from a point read of its grant (or app-only record) and credential. */
  private async healthOfEach(connections: readonly Connection[]): Promise<ConnectionHealth[]> {
    const expiries = new Map<string, Date>();
    const credentials = new Set(connections.flatMap((c) => credentialSecretName(c.credential) ?? []));
    await mapWithConcurrency([...credentials], POINT_READS, async (name) => {
      const expires = (await this.deps.store.getSecret(name))?.expiresOn;
      if (expires) expiries.set(name.toLowerCase(), expires);
    });
    return mapWithConcurrency(connections, POINT_READS, async (c) => {
      const name = isAppOnly(c) ? appOnlyRecordName(c.id) : refreshTokenSecretName(c.id);
      const stored = await this.deps.store.getSecret(name);
      const state = stored
        ? isAppOnly(c)
          ? appOnlyFromTags(stored.tags)
          : fromTags(stored.tags)
        : undefined;
      return this.healthOf(c, state, expiries);
    });
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

import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import { type AppOnlyConnection, type Connection, isAppOnly } from '../config/connections.js';
import { BrokerError, lastErrorOf } from '../errors.js';
import type { ConnectionEvents } from '../events/connection-events.js';
import {
  type ConnectionHealth,
  readSnapshot,
  type StatusService,
  stateIn,
} from '../health/status-service.js';
import type { Logger } from '../logger.js';
import type { SecretStore } from '../store/secret-store.js';
import type { AppOnlyState } from '../tokens/app-only-state.js';
import { failureTags, type GrantTags } from '../tokens/grant-store.js';
import type { TokenService } from '../tokens/token-service.js';
import { mapWithConcurrency } from './pool.js';

export type RotationOutcome = 'rotated' | 'skipped' | 'needs_consent' | 'client_misconfigured' | 'transient';

export interface RotationResult {
  connection: string;
  outcome: RotationOutcome;
  /** Why nothing was sent: `fresh`, `not_connected`, `cooldown`, or `stored` for a grant already dead. */
  reason?: 'fresh' | 'not_connected' | 'cooldown' | 'stored';
  /** Short error code (provider error + AADSTS), never a token. */
  error?: string;
}

export interface RotationOptions {
  onlyId?: string;
  /** Rotate even fresh connections and those cooling down (`broker rotate ID`). */
  force?: boolean;
  /** Stagger the workers' start by up to `jitterMs` (the timer does; the CLI does not). */
  jitter?: boolean;
}

/** After a transient failure a connection waits this long before the next try. */
export const TRANSIENT_COOLDOWN_MS = 15 * 60 * 1000;
/** A deadline warning is repeated at most once a day per deadline. */
const WARN_REPEAT_MS = 24 * 60 * 60 * 1000;

/**
 * The rotation pass (docs/design.md, "Token vending and rotation"): refreshes each connected connection
 * whose refresh token is older than its `rotateAfter`, so an unused grant never reaches the
 * provider's inactivity limit, through the same locked path as `/api/token`; classifies failures;
 * and warns ahead of every forecast deadline.
 */
export class RotationService {
  private readonly cooldownUntil = new Map<string, number>();
  private readonly warnedAt = new Map<string, number>();

  constructor(
    private readonly deps: {
      catalog: ConnectionCatalog;
      store: SecretStore;
      status: StatusService;
      tokens: TokenService;
      clock: Clock;
      logger: Logger;
      /** A deadline warning is also a `deadline.approaching` event, at most once a day like the line. */
      events?: ConnectionEvents;
      concurrency: number;
      jitterMs?: number;
      random?: () => number;
      sleep?: (ms: number) => Promise<void>;
    },
  ) {}

  async rotationPass(options: RotationOptions = {}): Promise<RotationResult[]> {
    const started = this.deps.clock.now();
    const snapshot = await readSnapshot(this.deps.store);
    const connections = (await this.deps.catalog.all()).filter(
      (c) => !options.onlyId || c.id === options.onlyId,
    );
    const queue = connections.map((c) => ({ connection: c, tags: stateIn(snapshot, c) }));
    const jitterMs = options.jitter ? (this.deps.jitterMs ?? 1000) : 0;
    let staggered = 0;
    const results = await mapWithConcurrency(queue, this.deps.concurrency, async (item) => {
      // Stagger only each worker's first item: instances and timers then do not hit the provider in step.
      if (jitterMs > 0 && staggered < this.deps.concurrency) {
        staggered++;
        await (this.deps.sleep ?? sleep)(Math.floor((this.deps.random ?? Math.random)() * jitterMs));
      }
      const { connection, tags } = item;
      const force = options.force ?? false;
      if (isAppOnly(connection)) {
        const app = tags && 'appOnly' in tags ? tags : undefined;
        const proved = await this.proveAppOnly(connection, app, force);
        if (proved.fresh) snapshot.appOnly.set(connection.id, proved.fresh);
        return proved.result;
      }
      const result = await this.rotateOne(connection, tags && !('appOnly' in tags) ? tags : undefined, force);
      if (result.fresh) snapshot.grants.set(connection.id, result.fresh);
      return result.result;
    });
    this.forgetOldWarnings();
    const health = connections.map((c) =>
      this.deps.status.healthOf(c, stateIn(snapshot, c), snapshot.expiries),
    );
    for (const [i, c] of connections.entries()) this.warnDeadlines(c, health[i]!, stateIn(snapshot, c));
    // A whole pass has read every connection: a cold instance's status page starts from this.
    if (!options.onlyId) await this.deps.status.recordDigest(health);

    const counts: Record<RotationOutcome, number> = {
      rotated: 0,
      skipped: 0,
      needs_consent: 0,
      client_misconfigured: 0,
      transient: 0,
    };
    for (const r of results) counts[r.outcome]++;
    this.deps.logger.info('rotation.pass', {
      ...counts,
      connections: results.length,
      concurrency: this.deps.concurrency,
      durationMs: this.deps.clock.now() - started,
    });
    return results;
  }

  private async rotateOne(
    connection: Connection,
    tags: GrantTags | undefined,
    force: boolean,
  ): Promise<{ result: RotationResult; fresh?: GrantTags }> {
    const id = connection.id;
    if (!tags) return { result: { connection: id, outcome: 'skipped', reason: 'not_connected' } };
    if (tags.status === 'needs_consent') {
      return {
        result: { connection: id, outcome: 'needs_consent', reason: 'stored', error: tags.lastError },
      };
    }
    const skipped = this.notDue(connection, Date.parse(tags.refreshedAt ?? tags.consentedAt ?? ''), force);
    if (skipped) return { result: skipped };
    return this.attempt(
      id,
      // The access token it mints is cached: callers get it without another refresh.
      () => this.deps.tokens.rotate(connection),
      (result, err): GrantTags | undefined =>
        result.outcome === 'needs_consent'
          ? { ...tags, status: 'needs_consent', ...(err instanceof BrokerError ? failureTags(err) : {}) }
          : undefined,
    );
  }

  /**
   * An app-only connection has no refresh token to keep alive; the pass proves its credential with
   * one client credentials request when due: `rotateAfter` after its last successful request (the
   * stored one, or this instance's if later), or at once if it never had one — connected or not.
   */
  private async proveAppOnly(
    connection: AppOnlyConnection,
    state: AppOnlyState | undefined,
    force: boolean,
  ): Promise<{ result: RotationResult; fresh?: AppOnlyState }> {
    const id = connection.id;
    const stored = Date.parse(state?.refreshedAt ?? '');
    const last = Math.max(
      Number.isFinite(stored) ? stored : -Infinity,
      this.deps.tokens.appOnlyLastSuccess(id) ?? -Infinity,
    );
    const skipped = this.notDue(connection, last, force);
    if (skipped) return { result: skipped };
    return this.attempt(
      id,
      () => this.deps.tokens.proveAppOnly(connection),
      (result): AppOnlyState | undefined =>
        result.outcome === 'client_misconfigured'
          ? { ...(state ?? { appOnly: true, status: 'not_connected' }), lastError: result.error }
          : undefined,
    );
  }

  /**
   * Why a connection is not due on either path: cooling down after a transient failure, or its last
   * success (`last`, NaN or -Infinity for none) younger than its `rotateAfter`. `force` makes it due.
   */
  private notDue(connection: Connection, last: number, force: boolean): RotationResult | undefined {
    if (force) return undefined;
    const now = this.deps.clock.now();
    if ((this.cooldownUntil.get(connection.id) ?? 0) > now) {
      return { connection: connection.id, outcome: 'skipped', reason: 'cooldown' };
    }
    if (Number.isFinite(last) && now - last < connection.rotateAfterMs) {
      return { connection: connection.id, outcome: 'skipped', reason: 'fresh' };
    }
    return undefined;
  }

  /**
   * The bookkeeping a due request gets on either path (delegated and app-only alike): a success
   * clears the connection's cooldown, a transient failure starts one, and the outcome is logged.
   * `onFailure` says what a failure leaves for the pass to write back (undefined: nothing).
   */
  private async attempt<T>(
    id: string,
    request: () => Promise<T>,
    onFailure: (result: RotationResult, err: unknown) => T | undefined,
  ): Promise<{ result: RotationResult; fresh?: T }> {
    try {
      const fresh = await request();
      this.cooldownUntil.delete(id);
      this.deps.logger.info('rotation.connection', { connection: id, outcome: 'rotated' });
      return { result: { connection: id, outcome: 'rotated' }, fresh };
    } catch (err) {
      const result = classify(id, err);
      if (result.outcome === 'transient')
        this.cooldownUntil.set(id, this.deps.clock.now() + TRANSIENT_COOLDOWN_MS);
      this.deps.logger.warn('rotation.connection', {
        connection: id,
        outcome: result.outcome,
        error: result.error,
      });
      return { result, fresh: onFailure(result, err) };
    }
  }

  /**
   * A warning older than a day suppresses nothing any more; dropping it keeps the map to the deadlines
   * of the last day, however often a deadline moves (a renewed secret, a new inactivity date).
   */
  private forgetOldWarnings(): void {
    const now = this.deps.clock.now();
    for (const [key, at] of this.warnedAt) if (now - at >= WARN_REPEAT_MS) this.warnedAt.delete(key);
  }

  private warnDeadlines(
    connection: Connection,
    health: ConnectionHealth,
    tags: GrantTags | AppOnlyState | undefined,
  ): void {
    const now = this.deps.clock.now();
    for (const d of health.deadlines) {
      const left = Date.parse(d.at) - now;
      if (left > this.deps.status.warnBeforeMs) continue;
      const key = `${connection.id}\n${d.kind}\n${d.at}`;
      if (now - (this.warnedAt.get(key) ?? Number.NEGATIVE_INFINITY) < WARN_REPEAT_MS) continue;
      this.warnedAt.set(key, now);
      this.deps.logger.warn('deadline.approaching', {
        connection: connection.id,
        kind: d.kind,
        at: d.at,
        daysLeft: Math.floor(left / 86_400_000),
        passed: left <= 0,
      });
      this.deps.events?.deadlineApproaching(connection, d, tags && !('appOnly' in tags) ? tags : undefined);
    }
  }
}

function classify(connection: string, err: unknown): RotationResult {
  if (!(err instanceof BrokerError)) return { connection, outcome: 'transient', error: 'internal_error' };
  const error = lastErrorOf(err);
  if (err.code === 'consent_required') return { connection, outcome: 'needs_consent', error };
  if (err.code === 'client_misconfigured') return { connection, outcome: 'client_misconfigured', error };
  return { connection, outcome: 'transient', error };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

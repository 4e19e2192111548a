import type { Clock } from '../clock.js';
import type { Connection } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
import { errorTag, type GrantService } from '../tokens/grant-service.js';
import type { GrantStore, GrantTags } from '../tokens/grant-store.js';
import type { TokenService } from '../tokens/token-service.js';
import { mapWithConcurrency } from './pool.js';

export type RotationOutcome =
  | 'rotated'
  | 'skipped'
  | 'not_connected'
  | 'needs_consent'
  | 'client_misconfigured'
  | 'transient';

export interface RotationResult {
  connection: string;
  outcome: RotationOutcome;
  /** Short error code (provider error + AADSTS), never a token. */
  error?: string;
}

/**
 * The rotation pass (DESIGN.md, "Token vending and rotation"): refreshes each connected connection
 * whose refresh token is older than its `rotateAfter`, so an unused grant never reaches the
 * provider's inactivity limit. Runs through the same locked path as `/api/token`.
 */
export class RotationService {
  constructor(
    private readonly deps: {
      connections: Map<string, Connection>;
      grantStore: GrantStore;
      grants: GrantService;
      tokens: TokenService;
      clock: Clock;
      logger: Logger;
      concurrency: number;
    },
  ) {}

  /** One pass over all connections, or only `onlyId`; `force` rotates even fresh ones (`broker rotate`). */
  async rotationPass(options: { onlyId?: string; force?: boolean } = {}): Promise<RotationResult[]> {
    const started = this.deps.clock.now();
    const stored = await this.deps.grantStore.listTags();
    const connections = [...this.deps.connections.values()].filter(
      (c) => !options.onlyId || c.id === options.onlyId,
    );
    const results = await mapWithConcurrency(connections, this.deps.concurrency, (c) =>
      this.rotateOne(c, stored.get(c.id), options.force ?? false),
    );
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    this.deps.logger.info('rotation.pass', {
      ...counts,
      connections: results.length,
      durationMs: this.deps.clock.now() - started,
    });
    return results;
  }

  private async rotateOne(
    connection: Connection,
    tags: GrantTags | undefined,
    force: boolean,
  ): Promise<RotationResult> {
    const id = connection.id;
    if (!tags) return { connection: id, outcome: 'not_connected' };
    if (tags.status === 'needs_consent')
      return { connection: id, outcome: 'needs_consent', error: tags.lastError };
    const last = Date.parse(tags.refreshedAt ?? tags.consentedAt ?? '');
    if (!force && Number.isFinite(last) && this.deps.clock.now() - last < connection.rotateAfterMs) {
      return { connection: id, outcome: 'skipped' };
    }
    try {
      const { tokens, tags: fresh } = await this.deps.grants.redeem(connection);
      // The access token just minted is as good as any: callers get it without another refresh.
      this.deps.tokens.prime(id, tokens, fresh.account);
      this.deps.logger.info('rotation.connection', { connection: id, outcome: 'rotated' });
      return { connection: id, outcome: 'rotated' };
    } catch (err) {
      const result = classify(id, err);
      this.deps.logger.warn('rotation.connection', {
        connection: id,
        outcome: result.outcome,
        error: result.error,
      });
      return result;
    }
  }
}

function classify(connection: string, err: unknown): RotationResult {
  if (!(err instanceof BrokerError)) return { connection, outcome: 'transient', error: 'internal_error' };
  const error = errorTag(err);
  if (err.code === 'consent_required') return { connection, outcome: 'needs_consent', error };
  if (err.code === 'client_misconfigured') return { connection, outcome: 'client_misconfigured', error };
  return { connection, outcome: 'transient', error };
}

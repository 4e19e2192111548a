import type { Clock } from '../clock.js';
import type { AppOnlyConnection } from '../config/connections.js';
import { BrokerError, isBrokerError, lastErrorOf } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenSet } from '../providers/provider.js';
import type { AppOnlyState, AppOnlyStateStore } from './app-only-state.js';
import type { DialectLookup } from './grant-service.js';
import { isOwnScopes } from './scope-policy.js';

/** Told of every state write that changes an app-only connection's state (the events writer, at the edge). */
export interface AppOnlyChanges {
  appOnlyChanged(
    connection: AppOnlyConnection,
    from: 'client_misconfigured' | 'connected' | 'not_connected',
    after: AppOnlyState,
  ): void;
}

/**
 * App-only connections (`"flow": "client_credentials"`, docs/app-only.md): every token is a client
 * credentials request (RFC 6749 §4.4) with the connection's own credential — a secret, a
 * certificate, or the broker's managed identity as a federated credential, so no secret at all.
 * There is no refresh token, hence no lock and no one-redemption rule: two instances asking at once
 * each get a valid token. `TokenService` caches and single-flights these tokens exactly as it does
 * delegated ones; this service only asks the provider and keeps the connection's state.
 *
 * The state (`AppOnlyStateStore`) is written only when it changes (first success, a new failure, a
 * failure cleared) or when its `refreshedAt` is older than half the connection's `rotateAfter`, so a
 * busy connection writes about twice per `rotateAfter`, and a quiet one once per rotation pass that
 * proves it. A token is vended even when that write fails (the state is advisory, the token good).
 */
export class AppOnlyService {
  /** The last success on this instance, by connection: the rotation pass counts from it. */
  private readonly lastSuccess = new Map<string, number>();

  constructor(
    private readonly deps: {
      dialect: DialectLookup;
      state: AppOnlyStateStore;
      clock: Clock;
      logger: Logger;
      /** Told of every state write that changes the connection's state (the log line, the webhook). */
      events?: AppOnlyChanges;
    },
  ) {}

  /**
   * One client credentials request for `scopes` (default the connection's one `.default`). A
   * failure is classified as for any connection, with the app-only context (a refused client is
   * `client_misconfigured`, never `consent_required`: there is no grant to re-consent); its remedy is
   * put into words at the edge, like every other.
   */
  async token(
    connection: AppOnlyConnection,
    scopes?: string[],
  ): Promise<{ tokens: TokenSet; state?: AppOnlyState }> {
    const dialect = this.deps.dialect(connection);
    if (!dialect.clientCredentials) {
      throw new BrokerError(
        'client_misconfigured',
        `Connection "${connection.id}": the ${connection.provider} provider does not offer the client credentials flow in this broker version.`,
        { connectionId: connection.id },
      );
    }
    const own = isOwnScopes(connection, scopes);
    let tokens: TokenSet;
    try {
      tokens = await dialect.clientCredentials(scopes);
    } catch (err) {
      // The dialects classify with the app-only context (oauth/classify.ts, applyContext): a refused
      // client is `client_misconfigured`, never a dead grant.
      if (own && isBrokerError(err, 'client_misconfigured')) await this.note(connection, { failure: err });
      throw err;
    }
    if (tokens.refreshToken !== undefined) {
      // Not asked for and never kept (RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included").
      tokens = { ...tokens, refreshToken: undefined };
    }
    this.lastSuccess.set(connection.id, this.deps.clock.now());
    const state = own ? await this.note(connection, { success: true }) : undefined;
    return { tokens, state };
  }

  /** Epoch ms of the last successful request on this instance, if any. */
  lastSuccessAt(connectionId: string): number | undefined {
    return this.lastSuccess.get(connectionId);
  }

  /** Writes the state when it changed or its `refreshedAt` is stale; returns what is (or would be) stored. */
  private async note(
    connection: AppOnlyConnection,
    outcome: { success: true } | { failure: BrokerError },
  ): Promise<AppOnlyState | undefined> {
    const now = this.deps.clock.now();
    try {
      const before = await this.deps.state.read(connection.id);
      const after: AppOnlyState = { ...(before ?? { appOnly: true, status: 'not_connected' }) };
      if ('success' in outcome) {
        after.status = 'connected';
        after.connectedAt ??= new Date(now).toISOString();
        after.refreshedAt = new Date(now).toISOString();
        delete after.lastError;
        delete after.failure;
      } else {
        after.lastError = lastErrorOf(outcome.failure);
        const { remedy, reason, hint } = outcome.failure.failure ?? {};
        after.failure = remedy && reason ? { remedy, reason, hint } : undefined;
      }
      const stale = Date.parse(before?.refreshedAt ?? '');
      const changed =
        before === undefined ||
        before.status !== after.status ||
        before.lastError !== after.lastError ||
        ('success' in outcome && !(now - stale < connection.rotateAfterMs / 2));
      if (changed) {
        await this.deps.state.write(connection.id, after);
        if (this.deps.events) {
          this.deps.events.appOnlyChanged(connection, before ? stateName(before) : 'not_connected', after);
        } else if (before?.status !== after.status || before?.lastError !== after.lastError) {
          this.deps.logger.info('connection.state_changed', {
            connection: connection.id,
            from: before ? stateName(before) : 'not_connected',
            to: stateName(after),
            reason: after.lastError ?? null,
          });
        }
      }
      return changed ? after : (before ?? after);
    } catch (err) {
      this.deps.logger.warn('app_only.state_write_failed', {
        connection: connection.id,
        code: err instanceof BrokerError ? err.code : 'internal_error',
      });
      return undefined;
    }
  }
}

function stateName(state: AppOnlyState): 'client_misconfigured' | 'connected' | 'not_connected' {
  return state.lastError ? 'client_misconfigured' : state.status;
}

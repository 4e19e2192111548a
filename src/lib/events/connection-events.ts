import type { Clock } from '../clock.js';
import type { AppOnlyConnection, Connection } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import type { Deadline } from '../health/deadlines.js';
import { remedyFor, remedyForDeadline, renderRemedy } from '../health/remedies.js';
import type { Logger } from '../logger.js';
import { type AppOnlyState, appOnlyFailure } from '../tokens/app-only-state.js';
import type { GrantTags } from '../tokens/grant-store.js';
import type { AlertEvent, AlertWebhook } from './alert-webhook.js';

/** A connection's state as events see it: a rejected client is a state of its own. */
export type ConnectionState = 'not_connected' | 'connected' | 'needs_consent' | 'client_misconfigured';

/** Only two writes leave a `lastError`: a dead grant (`needs_consent`) and a rejected client. */
export function stateOf(tags: GrantTags | undefined): ConnectionState {
  if (!tags) return 'not_connected';
  if (tags.status === 'needs_consent') return 'needs_consent';
  return tags.lastError ? 'client_misconfigured' : 'connected';
}

const TYPE_OF: Partial<Record<ConnectionState, AlertEvent['type']>> = {
  needs_consent: 'connection.needs_consent',
  client_misconfigured: 'connection.client_misconfigured',
};

/**
 * Tells people first (docs/design.md, "Events"): one `connection.state_changed` line per change of a
 * connection's state and, with `ALERT_WEBHOOK_URL`, one POSTed event. Only the code that writes the
 * new status tag calls `grantChanged` (the grant service, under the connection's lock, after the
 * write), so a transition is announced once however many callers or instances saw it fail.
 */
export class ConnectionEvents {
  constructor(
    private readonly deps: {
      publicUrl: string;
      clock: Clock;
      logger: Logger;
      webhook?: AlertWebhook;
      /**
       * Invitations: a fresh reconnect link for a connection pinned to an account (absent with
       * `ALERT_RECONNECT_LINKS=false`). Only asked for when there is a webhook to tell.
       */
      reconnectLink?: (connection: Connection) => Promise<string>;
    },
  ) {}

  /** Events whose reconnect link is still being made (drained with the deliveries). */
  private readonly preparing = new Set<Promise<void>>();

  /** After a write of a grant's tags: announces the change of state, if there is one. */
  grantChanged(connection: Connection, before: GrantTags | undefined, after: GrantTags): void {
    const from = stateOf(before);
    const to = stateOf(after);
    if (from === to) return;
    const remedy = remedyFor(
      { tags: after, deadlines: [] },
      { connection, publicUrl: this.deps.publicUrl, account: after.account },
      { now: this.deps.clock.now(), warnBeforeMs: 0 },
    );
    const type = this.stateChanged(connection, from, to, after.lastError, remedy);
    if (!type) return;
    const text =
      type === 'connection.recovered'
        ? `Token broker: connection ${connection.id} is connected again${after.account ? ` as ${after.account}` : ''}; nothing to do.`
        : `Token broker: ${type === 'connection.needs_consent' ? 'needs a new consent' : 'client rejected'}. ${remedy?.text ?? ''}`.trimEnd();
    if (type === 'connection.needs_consent' && this.isPinned(connection, after)) {
      this.sendWithReconnectLink(connection, after, remedy, text);
      return;
    }
    this.send(type, connection, after, remedy, text);
  }

  /**
   * After a write of an app-only connection's state (tokens/app-only-service.ts): a rejected client
   * and its recovery are announced as for any connection, with the app-only remedy given.
   */
  appOnlyChanged(connection: AppOnlyConnection, from: ConnectionState, after: AppOnlyState): void {
    const failure = appOnlyFailure(after);
    const remedy = failure ? renderRemedy(failure, { connection, publicUrl: this.deps.publicUrl }) : null;
    const to: ConnectionState = after.lastError ? 'client_misconfigured' : after.status;
    if (from === to) return;
    const type = this.stateChanged(connection, from, to, after.lastError, remedy);
    if (!type) return;
    const text =
      type === 'connection.recovered'
        ? `Token broker: connection ${connection.id} gets app-only tokens again; nothing to do.`
        : `Token broker: client rejected. ${remedy?.text ?? ''}`.trimEnd();
    // An app-only state is a grant's tags as far as the event goes: its status and lastError.
    this.send(type, connection, after, remedy, text);
  }

  /**
   * The `connection.state_changed` line both kinds of connection write for a change of state, and
   * the event it is announced as: a failure state's own type, or `connection.recovered` for a return
   * to connected from anything but not connected; undefined when nothing is to be sent.
   */
  private stateChanged(
    connection: Connection,
    from: ConnectionState,
    to: ConnectionState,
    lastError: string | undefined,
    remedy: Remedy | null,
  ): AlertEvent['type'] | undefined {
    this.deps.logger.info('connection.state_changed', {
      connection: connection.id,
      from,
      to,
      reason: lastError ?? null,
      remedy: remedy?.kind ?? null,
    });
    return (
      TYPE_OF[to] ?? (to === 'connected' && from !== 'not_connected' ? 'connection.recovered' : undefined)
    );
  }

  /** Pinned: only one account may consent, so a link is useless to anyone else (docs/design.md, "Invitations"). */
  private isPinned(connection: Connection, tags: GrantTags): boolean {
    return Boolean(connection.expectedAccount || tags.account);
  }

  /**
   * Makes the invitation off the caller's path (the grant service holds the connection's lock), then
   * sends; when it cannot be made, the event goes without it rather than not at all.
   */
  private sendWithReconnectLink(
    connection: Connection,
    tags: GrantTags,
    remedy: Remedy | null,
    text: string,
  ): void {
    const { reconnectLink, webhook, logger } = this.deps;
    if (!reconnectLink || !webhook) {
      this.send('connection.needs_consent', connection, tags, remedy, text);
      return;
    }
    const prepared = reconnectLink(connection)
      .then(
        (url) => url,
        (err: unknown) => {
          logger.warn('alert.reconnect_link_failed', {
            connection: connection.id,
            reason: err instanceof Error ? err.name : 'error',
          });
          return undefined;
        },
      )
      .then((url) =>
        this.send(
          'connection.needs_consent',
          connection,
          tags,
          remedy,
          url ? `${text} Reconnect: ${url}` : text,
          url,
        ),
      );
    this.preparing.add(prepared);
    void prepared.finally(() => this.preparing.delete(prepared));
  }

  /** From the rotation pass, which already repeats a deadline warning at most once a day. */
  deadlineApproaching(connection: Connection, deadline: Deadline, tags: GrantTags | undefined): void {
    const remedy = remedyForDeadline(
      deadline,
      { connection, publicUrl: this.deps.publicUrl, account: tags?.account },
      this.deps.clock.now(),
    );
    this.send(
      'deadline.approaching',
      connection,
      tags,
      remedy,
      `Token broker: deadline approaching. ${remedy.text}`,
    );
  }

  /** Waits for every webhook delivery under way (tests; shutdown). */
  async drain(): Promise<void> {
    while (this.preparing.size > 0) await Promise.allSettled([...this.preparing]);
    await this.deps.webhook?.drain();
  }

  private send(
    type: AlertEvent['type'],
    connection: Connection,
    tags: GrantTags | AppOnlyState | undefined,
    remedy: Remedy | null,
    text: string,
    reconnectUrl?: string,
  ): void {
    this.deps.webhook?.send({
      type,
      connection: connection.id,
      at: new Date(this.deps.clock.now()).toISOString(),
      status: tags ? tags.status : 'not_connected',
      lastError: tags?.lastError ?? null,
      remedy,
      statusUrl: `${this.deps.publicUrl}/api/status`,
      text,
      ...(reconnectUrl ? { reconnectUrl } : {}),
    });
  }
}

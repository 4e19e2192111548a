import type { Logger } from '../logger.js';

/** One state-change event as POSTed to `ALERT_WEBHOOK_URL` (docs/design.md, "Events"). */
export interface AlertEvent {
  type:
    | 'connection.needs_consent'
    | 'connection.client_misconfigured'
    | 'connection.recovered'
    | 'deadline.approaching';
  connection: string;
  /** ISO-8601. */
  at: string;
  status: 'connected' | 'needs_consent' | 'not_connected';
  lastError: string | null;
  remedy: { kind: string; text: string } | null;
  statusUrl: string;
  /** One line for chat tools (Teams and Slack incoming webhooks show `text`). */
  text: string;
  /**
   * Invitations: on `connection.needs_consent` of a pinned connection, a fresh 7-day invitation
   * (no replace) the owner of the mailbox can use as it is; `text` ends with it.
   */
  reconnectUrl?: string;
}

export interface AlertWebhookOptions {
  url: string;
  logger: Logger;
  fetch?: typeof fetch;
  /** Per attempt (default 5000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** The first wait between attempts, doubled each time (default 1000). */
  backoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Delivers events to the webhook without ever making a caller wait: `send` starts a delivery on its
 * own promise chain and returns at once; `drain` (tests, shutdown) waits for every delivery under
 * way. A delivery is retried on anything but a 2xx (redirects are not followed: the URL is the one
 * configured, nowhere else), then given up with one `alert.delivery_failed` line. The URL itself is
 * never logged: a Teams or Slack webhook URL is a credential.
 */
export class AlertWebhook {
  private readonly pending = new Set<Promise<void>>();
  private readonly fetch: typeof fetch;

  constructor(private readonly options: AlertWebhookOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  send(event: AlertEvent): void {
    const delivery = this.deliver(event).catch(() => undefined);
    this.pending.add(delivery);
    void delivery.finally(() => this.pending.delete(delivery));
  }

  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async deliver(event: AlertEvent): Promise<void> {
    const { logger, timeoutMs = 5000, retries = 3, backoffMs = 1000 } = this.options;
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const body = JSON.stringify(event);
    let reason = '';
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      reason = await this.attempt(body, timeoutMs);
      if (!reason) {
        logger.info('alert.sent', { type: event.type, connection: event.connection, attempts: attempt });
        return;
      }
      if (attempt <= retries) await sleep(backoffMs * 2 ** (attempt - 1));
    }
    logger.error('alert.delivery_failed', {
      type: event.type,
      connection: event.connection,
      attempts: retries + 1,
      reason,
    });
  }

  /** One POST: '' when delivered, else why not (safe to log: no URL, no body). */
  private async attempt(body: string, timeoutMs: number): Promise<string> {
    try {
      const response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return '';
      return response.status >= 300 && response.status < 400
        ? `redirect ${response.status} (not followed)`
        : `HTTP ${response.status}`;
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      return name === 'TimeoutError' || name === 'AbortError'
        ? `timeout after ${timeoutMs} ms`
        : 'network error';
    }
  }
}

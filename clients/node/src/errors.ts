/** What the broker advises when a connection needs a person (its problem body's `remedy`). */
export interface BrokerRemedy {
  kind: string;
  text: string;
}

/**
 * The broker's problem codes (its problem+json `code`), and the ones this client gives a failure
 * that never produced a problem body:
 * - `broker_unreachable`: no connection to the broker (DNS, refused, reset);
 * - `broker_timeout`: no complete answer within `retry.attemptTimeoutMs`;
 * - `invalid_response`: an answer that is not the broker's (HTML, garbage, truncated, a 5xx without
 *   a problem body, a 200 without a usable token);
 * - `caller_credential_failed`: the `credential` for the broker's API threw;
 * - `aborted`: the caller's `abortSignal` fired.
 */
export type BrokerErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'caller_not_allowed'
  | 'scope_not_allowed'
  | 'unknown_connection'
  | 'consent_required'
  | 'account_mismatch'
  | 'client_misconfigured'
  | 'mailbox_not_allowed'
  | 'upstream_unavailable'
  | 'broker_unreachable'
  | 'broker_timeout'
  | 'invalid_response'
  | 'caller_credential_failed'
  | 'aborted'
  | (string & {});

export interface BrokerErrorDetails {
  /** HTTP status of the broker's answer; 0 when there was none. */
  status: number;
  remedy?: BrokerRemedy | null;
  /** Seconds the broker asked to wait (`Retry-After`), when it said. */
  retryAfter?: number;
  /** `consent_required`: where a person consents again. */
  consentUrl?: string;
  cause?: unknown;
}

/**
 * Every failure of the credential. `code` is stable (switch on it); `message` is plain words for a
 * log and never holds a token or a key.
 */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: BrokerErrorCode;
  readonly status: number;
  readonly remedy: BrokerRemedy | null;
  readonly retryAfter: number | undefined;
  readonly consentUrl: string | undefined;

  constructor(code: BrokerErrorCode, message: string, details: BrokerErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.remedy = details.remedy ?? null;
    this.retryAfter = details.retryAfter;
    this.consentUrl = details.consentUrl;
  }
}

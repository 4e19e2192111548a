/**
 * The broker's error vocabulary. Every code is a problem+json `code` of DESIGN.md; the HTTP status
 * of each lives in one table (`STATUS_BY_CODE`) and nowhere else.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'unknown_connection'
  | 'consent_failed'
  | 'account_mismatch'
  | 'consent_required'
  | 'client_misconfigured'
  | 'upstream_unavailable';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  unknown_connection: 404,
  consent_failed: 400,
  account_mismatch: 403,
  consent_required: 409,
  client_misconfigured: 502,
  upstream_unavailable: 503,
};

/** What a provider said, safe to show: its `error` and the AADSTS number, never a token. */
export interface ProviderErrorInfo {
  error: string;
  aadsts?: number;
  /** HTTP status the provider answered with, when it answered. */
  status?: number;
}

export interface BrokerErrorOptions {
  connectionId?: string;
  providerError?: ProviderErrorInfo;
  /** Whole seconds, for `upstream_unavailable`. */
  retryAfter?: number;
  cause?: unknown;
}

/**
 * An error with a stable `code`. Its `message` is the problem's `detail`: plain words on what
 * happened and what to do, so it must never carry a token, code or secret.
 */
export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly connectionId?: string;
  readonly providerError?: ProviderErrorInfo;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, detail: string, options: BrokerErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.connectionId = options.connectionId;
    this.providerError = options.providerError;
    this.retryAfter = options.retryAfter;
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }
}

export function isBrokerError(err: unknown, code?: ErrorCode): err is BrokerError {
  return err instanceof BrokerError && (code === undefined || err.code === code);
}

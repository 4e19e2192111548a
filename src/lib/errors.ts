/**
 * The broker's error vocabulary, and every error class it throws. Each code is a problem+json `code`
 * of DESIGN.md, or one of the host's own (`not_found`, `method_not_allowed`, `payload_too_large`,
 * `internal_error`); its HTTP status and title live in one table (`ERROR_TABLE`) and nowhere else.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'caller_not_allowed'
  | 'scope_not_allowed'
  | 'forbidden'
  | 'unknown_connection'
  | 'consent_failed'
  | 'account_mismatch'
  | 'consent_required'
  | 'client_misconfigured'
  | 'precondition_failed'
  | 'declared_in_config'
  | 'template_in_use'
  | 'unknown_template'
  | 'invitation_invalid'
  | 'mailbox_not_allowed'
  | 'upstream_unavailable'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'internal_error';

export const ERROR_TABLE: Record<ErrorCode, { status: number; title: string }> = {
  invalid_request: { status: 400, title: 'Invalid request' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  caller_not_allowed: { status: 403, title: 'Caller not allowed' },
  scope_not_allowed: { status: 403, title: 'Scope not allowed' },
  forbidden: { status: 403, title: 'Forbidden' },
  unknown_connection: { status: 404, title: 'Unknown connection' },
  consent_failed: { status: 400, title: 'Consent failed' },
  account_mismatch: { status: 403, title: 'Wrong account' },
  consent_required: { status: 409, title: 'Consent required' },
  client_misconfigured: { status: 502, title: 'Client misconfigured' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  declared_in_config: { status: 409, title: 'Declared in configuration' },
  template_in_use: { status: 409, title: 'Template in use' },
  unknown_template: { status: 404, title: 'Unknown template' },
  invitation_invalid: { status: 410, title: 'Invitation invalid' },
  mailbox_not_allowed: { status: 403, title: 'Mailbox not allowed' },
  upstream_unavailable: { status: 503, title: 'Upstream unavailable' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  internal_error: { status: 500, title: 'Internal error' },
};

/** What a provider said, safe to show: its `error` and the AADSTS number, never a token. */
export interface ProviderErrorInfo {
  error: string;
  aadsts?: number;
  /** HTTP status the provider answered with, when it answered. */
  status?: number;
}

/**
 * What a person does about a connection that is not healthy (DESIGN.md, "Telling people what to
 * do"). The table from provider errors to remedies is `health/remedies.ts`.
 */
export type RemedyKind =
  | 'reconnect'
  | 'mfa_then_reconnect'
  | 'conditional_access'
  | 'admin_consent'
  | 'new_client_secret'
  | 'fix_app_registration'
  | 'wait'
  | 'renew_before_deadline';

/** `text`: plain words naming the connection, the account and the one action; never a token. */
export interface Remedy {
  kind: RemedyKind;
  text: string;
}

export interface BrokerErrorOptions {
  connectionId?: string;
  providerError?: ProviderErrorInfo;
  /** Whole seconds, for `upstream_unavailable`. */
  retryAfter?: number;
  /** `WWW-Authenticate` of an `unauthorized`: the scheme the route expects (default `FunctionKey`). */
  challenge?: string;
  /** `invalid_request` of an admin write: every schema violation, by dotted path (`""` = the whole body). */
  errors?: { path: string; message: string }[];
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
  readonly challenge?: string;
  readonly errors?: { path: string; message: string }[];
  /** Attached by whoever knows the connection (the grant service); shown as the problem's `remedy`. */
  remedy?: Remedy;

  constructor(code: ErrorCode, detail: string, options: BrokerErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.connectionId = options.connectionId;
    this.providerError = options.providerError;
    this.retryAfter = options.retryAfter;
    this.challenge = options.challenge;
    if (options.errors) this.errors = options.errors;
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
}

export function isBrokerError(err: unknown, code?: ErrorCode): err is BrokerError {
  return err instanceof BrokerError && (code === undefined || err.code === code);
}

/** An invalid setting or connection: the broker refuses to start, with a line naming the field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Key Vault refused the broker's identity (401/403) or no credential could be had: a set-up problem. */
export class KeyVaultAccessError extends BrokerError {
  constructor(
    detail: string,
    readonly vaultUrl: string,
    /** The vault's HTTP status, or undefined when no token could be obtained at all. */
    readonly vaultStatus?: number,
  ) {
    super('upstream_unavailable', detail, { retryAfter: 60 });
    this.name = 'KeyVaultAccessError';
  }
}

/** Key Vault asked for a `Retry-After` longer than the operation's remaining time: give up now, pass the wait on. */
export class StoreThrottledError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number,
  ) {
    super(`Key Vault throttled (${status})`);
    this.name = 'StoreThrottledError';
  }
}

/** The lock's storage could not be asked (network, timeout, 5xx, refused access): distinct from a lease held by another. */
export class LockStorageError extends BrokerError {
  constructor(
    connectionId: string,
    detail: string,
    /** The HTTP status and service code, safe to log. */
    readonly reason: string,
  ) {
    super('upstream_unavailable', detail, { connectionId, retryAfter: 5 });
    this.name = 'LockStorageError';
  }
}

/**
 * The broker's error vocabulary, and every error class it throws. Each code is a problem+json `code`
 * of docs/design.md ("Error codes"), or one of the host's own (`not_found`, `method_not_allowed`, `payload_too_large`,
 * `misdirected_request`, `internal_error`); its HTTP status and title live in one table (`ERROR_TABLE`) and nowhere else.
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
  | 'misdirected_request'
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
  misdirected_request: { status: 421, title: 'Misdirected request' },
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
 * What a person does about a connection that is not healthy (docs/design.md, "Telling people what
 * to do"). Which kind a provider code gets is decided once, in its provider's table
 * (`oauth/classify.ts`, `providers/entra-errors.ts`, `providers/sharepoint-acs-errors.ts`);
 * `health/remedies.ts` only puts it into words.
 */
export const REMEDY_KINDS = [
  'reconnect',
  'mfa_then_reconnect',
  'conditional_access',
  'admin_consent',
  'new_client_secret',
  'fix_app_registration',
  'wait',
  'renew_before_deadline',
] as const;
export type RemedyKind = (typeof REMEDY_KINDS)[number];

/** `text`: plain words naming the connection, the account and the one action; never a token. */
export interface Remedy {
  kind: RemedyKind;
  text: string;
}

/**
 * What a failure means for its connection, in the refresh context:
 *
 * | class       | answer (`ErrorCode`)   | the connection…                                          |
 * |-------------|------------------------|----------------------------------------------------------|
 * | `dead`      | `consent_required`     | needs a person to consent again                          |
 * | `client`    | `client_misconfigured` | has a client id, secret or endpoint the provider refuses |
 * | `scope`     | `invalid_request`      | was asked for a scope its grant cannot give (caller's)   |
 * | `transient` | `upstream_unavailable` | is fine; the provider is down or throttling              |
 * | `unknown`   | `upstream_unavailable` | is left alone: an unrecognised answer must not kill a grant |
 */
export type FailureClass = 'dead' | 'client' | 'scope' | 'transient' | 'unknown';

export const ANSWER_OF_CLASS: Readonly<Record<FailureClass, ErrorCode>> = {
  dead: 'consent_required',
  client: 'client_misconfigured',
  scope: 'invalid_request',
  transient: 'upstream_unavailable',
  unknown: 'upstream_unavailable',
};

/**
 * The remedies that may go with an answer: a table row whose advice is not listed for its answer is
 * a contradiction (test/unit/failure-tables.test.ts walks every row against this).
 */
export const REMEDIES_OF_ANSWER: Readonly<Partial<Record<ErrorCode, readonly RemedyKind[]>>> = {
  consent_required: ['reconnect', 'mfa_then_reconnect', 'conditional_access', 'admin_consent'],
  client_misconfigured: ['new_client_secret', 'fix_app_registration', 'admin_consent'],
  invalid_request: ['admin_consent', 'fix_app_registration'],
  upstream_unavailable: ['wait'],
};

/** Which setting a `fix_app_registration` (or a reconnect) is about, so its words can name it. */
export const REMEDY_HINTS = [
  'redirect_uri',
  'client_id',
  'credential',
  'scopes',
  'acs_retired',
  'never_connected',
  'service_principal',
] as const;
export type RemedyHint = (typeof REMEDY_HINTS)[number];

/** One row of a provider's table: provider code → class (hence the HTTP answer), remedy and words. */
export interface FailureRow {
  class: FailureClass;
  remedy: RemedyKind;
  /** What happened, in words that follow "Connection X: " (lower case, no full stop). */
  reason: string;
  hint?: RemedyHint;
}

/**
 * A classified failure, carried on the `BrokerError` and stored in the grant's tags: a row of its
 * provider's table after the context rules (whose scopes, which credential) were applied.
 */
export interface Failure extends FailureRow {
  /** The scopes a caller asked for beyond the connection's own (`/api/token?scope=`), named in the advice. */
  scope?: string;
  /** The account the grant is connected as, named in the advice when `expectedAccount` is not set. */
  account?: string;
}

/**
 * The failure of an error no provider table classified (the store or the lock down, a discovery
 * document missing, a grant stored dead before failures were stored), by its answer alone.
 */
export const UNCLASSIFIED_FAILURES: Readonly<Partial<Record<ErrorCode, Failure>>> = {
  consent_required: {
    class: 'dead',
    remedy: 'reconnect',
    reason: 'the provider no longer accepts the grant',
  },
  client_misconfigured: {
    class: 'client',
    remedy: 'fix_app_registration',
    reason: 'the provider rejects the client',
  },
  upstream_unavailable: {
    class: 'transient',
    remedy: 'wait',
    reason: 'the provider or the store is unavailable',
  },
};

/** `invalid_grant, AADSTS50173` (`sep` `' '`: the stored `lastError`), or `http_401`: safe to show. */
export function providerErrorLabel(p: ProviderErrorInfo, sep = ', ', errorNumber?: string): string {
  const number = errorNumber ?? (p.aadsts === undefined ? undefined : `AADSTS${p.aadsts}`);
  return number ? `${p.error}${sep}${number}` : p.error;
}

export interface BrokerErrorOptions {
  connectionId?: string;
  providerError?: ProviderErrorInfo;
  /** Whole seconds, for `upstream_unavailable`. */
  retryAfter?: number;
  /** `WWW-Authenticate` of an `unauthorized`: the scheme the route expects (default `FunctionKey`). */
  challenge?: string;
  /** What the failure means and what to do about it, from the provider's table. */
  failure?: Failure;
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
  /** Not readonly: the grant service names the connection on a store or lock failure it passes on. */
  connectionId?: string;
  readonly providerError?: ProviderErrorInfo;
  readonly retryAfter?: number;
  readonly challenge?: string;
  /** Not readonly: the grant service adds the connected account it read under the lock. */
  failure?: Failure;
  readonly errors?: { path: string; message: string }[];
  /** Attached at the edge (the adapter, from `failure` and the connection); shown as the problem's `remedy`. */
  remedy?: Remedy;

  constructor(code: ErrorCode, detail: string, options: BrokerErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.connectionId = options.connectionId;
    this.providerError = options.providerError;
    this.retryAfter = options.retryAfter;
    this.challenge = options.challenge;
    this.failure = options.failure;
    if (options.errors) this.errors = options.errors;
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
}

/** The short, readable `lastError` of a failure (`invalid_grant AADSTS50173`, or our code): never parsed back. */
export function lastErrorOf(err: BrokerError): string {
  return err.providerError ? providerErrorLabel(err.providerError, ' ') : err.code;
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

/** Which way a secret store failed: a request it refuses, a version it lacks, a file it cannot read. */
export type StoreErrorKind = 'invalid' | 'not_found' | 'corrupt' | 'rejected';

/**
 * A secret store's own failure (file store, Key Vault, the fakes). The message names the secret or
 * file and what is wrong with it, never a value. Outages are `BrokerError('upstream_unavailable')`.
 */
export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** A PEM bundle that cannot serve; `message` names what is wrong, never any of the content. */
export class CertificateBundleError extends Error {
  override name = 'CertificateBundleError';
}

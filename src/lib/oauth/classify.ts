import {
  ANSWER_OF_CLASS,
  BrokerError,
  type Failure,
  type FailureRow,
  type ProviderErrorInfo,
  providerErrorLabel,
} from '../errors.js';
import { startPath } from '../links.js';
import { DEFAULT_RETRY_AFTER_S } from '../retry-after.js';
import type { TokenEndpointFailure } from './types.js';

export { DEFAULT_RETRY_AFTER_S };

const row = (
  cls: FailureRow['class'],
  remedy: FailureRow['remedy'],
  reason: string,
  hint?: FailureRow['hint'],
): FailureRow => (hint ? { class: cls, remedy, reason, hint } : { class: cls, remedy, reason });

export { row as failureRow };

/**
 * The generic OAuth 2 table: RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2, OpenID Connect Core
 * §3.1.2.6 `error` → class (hence the HTTP answer, `ANSWER_OF_CLASS` in errors.ts), remedy and
 * words. A dialect puts its own table in front (`OAuthClassifyContext.rule`: Entra's AADSTS numbers
 * in providers/entra-errors.ts, ACS's in providers/sharepoint-acs-errors.ts).
 */
export const OAUTH_ERRORS: Readonly<Record<string, FailureRow>> = {
  invalid_grant: row(
    'dead',
    'reconnect',
    'the provider no longer accepts the grant (expired, revoked or already used)',
  ),
  interaction_required: row('dead', 'reconnect', 'the provider requires the person to sign in again'),
  login_required: row('dead', 'reconnect', 'the provider requires the person to sign in again'),
  consent_required: row('dead', 'reconnect', 'consent for the requested permissions is missing'),
  account_selection_required: row(
    'dead',
    'reconnect',
    'the provider requires the person to choose the account again',
  ),
  access_denied: row('dead', 'reconnect', 'the provider denied access'),
  invalid_token: row('dead', 'reconnect', 'the provider no longer accepts the token'),
  invalid_client: row('client', 'new_client_secret', 'the provider rejected the client credentials'),
  unauthorized_client: row(
    'client',
    'fix_app_registration',
    'the client is not allowed to use this grant type',
  ),
  unsupported_grant_type: row(
    'client',
    'fix_app_registration',
    'the provider does not support this grant type for the client',
  ),
  invalid_request: row('client', 'fix_app_registration', 'the provider called the request malformed'),
  invalid_scope: row('scope', 'fix_app_registration', 'the scope is not valid', 'scopes'),
  invalid_target: row('scope', 'fix_app_registration', 'the resource is not valid', 'scopes'),
  invalid_resource: row('scope', 'fix_app_registration', 'the resource is not valid', 'scopes'),
  temporarily_unavailable: row('transient', 'wait', 'the provider is temporarily unavailable'),
  server_error: row('transient', 'wait', 'the provider had an internal error'),
  slow_down: row('transient', 'wait', 'the provider asks to slow down'),
};

/** Answers without a known code, by HTTP status (after the dialect's rule and the `error` code). */
export function statusRow(status: number): FailureRow | undefined {
  if (status === 429 || status >= 500)
    return row('transient', 'wait', `the provider answered HTTP ${status}`);
  if (status === 401)
    return row('client', 'new_client_secret', 'the provider rejected the client (HTTP 401)');
  if (status === 403)
    return row('client', 'fix_app_registration', 'the provider refused the client (HTTP 403)');
  if (status === 404) {
    return row('client', 'fix_app_registration', 'the endpoint does not exist (check the configured URLs)');
  }
  return undefined;
}

/** What nothing recognises: the grant is left alone, the broker tries again. */
export const UNKNOWN_ROW = row(
  'unknown',
  'wait',
  'the provider gave an answer the broker does not recognise',
);

export interface OAuthClassifyContext {
  connectionId?: string;
  /**
   * The scopes a caller asked for beyond the connection's own (`/api/token?scope=`), space-separated;
   * undefined when the connection's own were asked for.
   */
  otherScope?: string;
  /** `credential.secretName`, named in the advice when the client is refused. */
  secretName?: string;
  /** `credential.type` (`none`: a public client): only a secret is renewed with `broker secrets set`. */
  credentialType?: 'secret' | 'managedIdentity' | 'certificate' | 'none';
  /** A dialect's own table, consulted before the RFC codes (e.g. AADSTS or ACS numbers). */
  rule?: (failure: TokenEndpointFailure) => FailureRow | undefined;
  /** The provider's own error number, e.g. `ACS50012`: named in the detail, never the description. */
  errorNumber?: string;
  /** The connection fields to check when the client is refused. */
  clientFields?: string;
  /** Further failures meaning "no consent for the other scope asked for" (Entra: AADSTS65001). */
  otherScopeConsent?: (failure: TokenEndpointFailure) => boolean;
  /**
   * A client credentials request (docs/design.md, "App-only connections"): there is no grant that
   * could be dead, so a "dead" answer means the app's own permissions are missing — the client's
   * failure, fixed by an admin or the app registration, never by a person signing in.
   */
  appOnly?: boolean;
}

/**
 * The row of a failure: 429/5xx → transient (whatever the body says); the dialect's own rule; the
 * `error` code; 401/403/404 without a known code; else unknown.
 */
export function failureRowOf(
  failure: TokenEndpointFailure,
  rule?: (failure: TokenEndpointFailure) => FailureRow | undefined,
): FailureRow {
  const { status, oauthError } = failure;
  if (status === 429 || status >= 500) return statusRow(status)!;
  return (
    rule?.(failure) ??
    (oauthError ? OAUTH_ERRORS[oauthError.error] : undefined) ??
    statusRow(status) ??
    UNKNOWN_ROW
  );
}

/**
 * The context rules, applied once to a row: missing consent for an explicitly requested other
 * scope is the caller's (scope, and an admin's consent for that scope); a scope error on the
 * connection's own scopes is the configuration's (client); a refused secret of a client that has
 * none to renew is its registration's.
 */
export function applyContext(
  found: FailureRow,
  failure: TokenEndpointFailure,
  context: OAuthClassifyContext,
): Failure {
  const { otherScope } = context;
  let result: Failure = { ...found };
  if (
    otherScope !== undefined &&
    (found.class === 'dead' || found.class === 'scope') &&
    (failure.oauthError?.error === 'consent_required' || context.otherScopeConsent?.(failure) === true)
  ) {
    result = { ...result, class: 'scope', remedy: 'admin_consent' };
  }
  if (result.class === 'scope') {
    if (otherScope === undefined) result = { ...result, class: 'client' };
    else result.scope = otherScope;
  }
  if (context.appOnly && result.class === 'dead') {
    const signIn = result.remedy === 'reconnect' || result.remedy === 'mfa_then_reconnect';
    result = { ...result, class: 'client', remedy: signIn ? 'fix_app_registration' : result.remedy };
  }
  const credential = context.credentialType ?? 'secret';
  if (result.remedy === 'new_client_secret' && (credential === 'none' || credential === 'managedIdentity')) {
    result = { ...result, remedy: 'fix_app_registration', hint: 'credential' };
  }
  return result;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** What the provider said, as a problem's `providerError`. */
export function providerErrorOf(failure: TokenEndpointFailure): ProviderErrorInfo {
  return {
    error: failure.oauthError?.error ?? `http_${failure.status}`,
    aadsts: failure.oauthError?.aadsts,
    status: failure.status,
  };
}

/** `invalid_grant, ACS50012` or `HTTP 401`: what the provider said, safe to show. */
export function failureLabel(failure: TokenEndpointFailure, errorNumber?: string): string {
  if (!failure.oauthError) {
    return errorNumber ? `HTTP ${failure.status}, ${errorNumber}` : `HTTP ${failure.status}`;
  }
  return providerErrorLabel(providerErrorOf(failure), ', ', errorNumber);
}

/** The problem's `detail`: what happened and, in short, what to do (the remedy says it in full). */
function detailOf(result: Failure, failure: TokenEndpointFailure, context: OAuthClassifyContext): string {
  const said = failureLabel(failure, context.errorNumber);
  const reason = result.reason;
  const fields = context.clientFields ?? 'clientId, redirectUri, endpoints and credential';
  switch (result.class) {
    case 'dead':
      return `${capitalize(reason)} (${said}). Open ${startPath(context.connectionId ?? 'ID')} to consent again.`;
    case 'client':
      if (result.hint === 'scopes') {
        return (
          `The provider refuses the connection's own scopes: ${reason} (${said}). ` +
          'Fix "scopes" in its configuration, then consent again.'
        );
      }
      if (result.remedy === 'new_client_secret' && (context.credentialType ?? 'secret') === 'secret') {
        return (
          `The provider rejected the client: ${reason} (${said}). Check the connection's ${fields}; ` +
          `store the current client secret with: broker secrets set ${context.secretName ?? '<credential.secretName>'}.`
        );
      }
      return `The provider rejected the client: ${reason} (${said}). Check the connection's ${fields}.`;
    case 'scope':
      if (result.remedy === 'admin_consent') {
        return (
          `The app has no consent for the requested scope: ${reason} (${said}). ` +
          'An admin must grant it; the connection itself is unchanged.'
        );
      }
      return (
        `The provider cannot issue a token for the requested scope: ${reason} (${said}). ` +
        "Ask for a scope this connection was consented for, or add it to the connection's scopes and consent again."
      );
    case 'transient':
      return `${capitalize(reason)} (${said}); nothing was changed. Try again in ${failure.retryAfter ?? DEFAULT_RETRY_AFTER_S} s.`;
    case 'unknown':
      return (
        `${capitalize(reason)} (${said}); nothing was changed. ` +
        "Try again later; if it persists, check the connection's configuration."
      );
  }
}

/**
 * Classifies an RFC 6749 §5.2 token endpoint error (or an RFC 8628 §3.1 device authorization error)
 * for the refresh context, once: the row of the dialect's table or of `OAUTH_ERRORS`, the context
 * rules, then the error whose code is the row's answer and whose `failure` carries the rest. The
 * `detail` names the `error` (and a provider's error number), never `error_description`, which can
 * echo request data.
 */
export function classifyOAuthError(
  failure: TokenEndpointFailure,
  context: OAuthClassifyContext = {},
): BrokerError {
  return failureError(applyContext(failureRowOf(failure, context.rule), failure, context), failure, context);
}

/** The `BrokerError` of a classified failure (its detail by class). */
export function failureError(
  result: Failure,
  failure: TokenEndpointFailure,
  context: OAuthClassifyContext,
  detail = detailOf(result, failure, context),
  providerError = providerErrorOf(failure),
): BrokerError {
  const code = ANSWER_OF_CLASS[result.class];
  return new BrokerError(code, detail, {
    connectionId: context.connectionId,
    providerError,
    failure: result,
    retryAfter: code === 'upstream_unavailable' ? (failure.retryAfter ?? DEFAULT_RETRY_AFTER_S) : undefined,
  });
}

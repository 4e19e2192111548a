import { BrokerError, type ErrorCode, type ProviderErrorInfo } from '../errors.js';
import type { TokenEndpointFailure } from './types.js';

/** `Retry-After` (seconds) handed to callers of a transient failure when the provider named none. */
export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * What a token endpoint error means for a connection, in the refresh context, keyed by the
 * RFC 6749 §5.2 `error`. A dialect layers its own knowledge in front (`OAuthClassifyContext.rule`:
 * Entra's AADSTS table in providers/entra-errors.ts, ACS's error numbers), with the same kinds:
 *
 * | kind        | code                   | the connection…                                         |
 * |-------------|------------------------|---------------------------------------------------------|
 * | `dead`      | `consent_required`     | needs a person to consent again                         |
 * | `client`    | `client_misconfigured` | has a client id, secret or endpoint the provider refuses |
 * | `scope`     | `invalid_request`      | was asked for a scope its grant cannot give (caller's fault) |
 * | `transient` | `upstream_unavailable` | is fine; the provider is down or throttling             |
 * | `unknown`   | `upstream_unavailable` | is left alone: an unrecognised answer must not kill a grant |
 *
 * Lookup order: 429/5xx → transient; the dialect's own rule; the `error` code; 401/403/404
 * without a known code → client; else unknown. Two context rules: a scope error on the
 * connection's own scopes is the configuration's fault (client), missing consent for an explicitly
 * requested other scope is the caller's (scope).
 */
export type FailureKind = 'dead' | 'client' | 'scope' | 'transient';
export type FailureRule = readonly [FailureKind, string];

/** RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2, OpenID Connect Core §3.1.2.6. */
const BY_ERROR: Readonly<Record<string, FailureRule>> = {
  invalid_grant: ['dead', 'the provider no longer accepts the grant (expired, revoked or already used)'],
  interaction_required: ['dead', 'the provider requires the person to sign in again'],
  login_required: ['dead', 'the provider requires the person to sign in again'],
  consent_required: ['dead', 'consent for the requested permissions is missing'],
  account_selection_required: ['dead', 'the provider requires the person to choose an account again'],
  access_denied: ['dead', 'the provider denied access'],
  invalid_token: ['dead', 'the provider no longer accepts the token'],
  invalid_client: ['client', 'the provider rejected the client credentials'],
  unauthorized_client: ['client', 'the client is not allowed to use this grant type'],
  unsupported_grant_type: ['client', 'the provider does not support this grant type for the client'],
  invalid_request: ['client', 'the provider called the request malformed'],
  invalid_scope: ['scope', 'the scope is not valid'],
  invalid_target: ['scope', 'the resource is not valid'],
  invalid_resource: ['scope', 'the resource is not valid'],
  temporarily_unavailable: ['transient', 'the provider is temporarily unavailable'],
  server_error: ['transient', 'the provider had an internal error'],
  slow_down: ['transient', 'the provider asks to slow down'],
};

export interface OAuthClassifyContext {
  connectionId?: string;
  /** The refresh asked for scopes other than the connection's own (`/api/token?scope=`). */
  otherScope?: boolean;
  /** `credential.secretName`, named in the advice when the client is refused. */
  secretName?: string;
  /** A dialect's own rules, consulted before the RFC codes (e.g. ACS error numbers). */
  rule?: (failure: TokenEndpointFailure) => FailureRule | undefined;
  /** The provider's own error number, e.g. `ACS50012`: named in the detail, never the description. */
  errorNumber?: string;
  /** The connection fields to check when the client is refused. */
  clientFields?: string;
  /** Further failures meaning "no consent for the other scope asked for" (Entra: AADSTS65001). */
  otherScopeConsent?: (failure: TokenEndpointFailure) => boolean;
  /** Failures where the client secret itself is wrong (default: `invalid_client` or a 401). */
  secretRejected?: (failure: TokenEndpointFailure) => boolean;
}

/** The kind of a failure, or undefined when nothing recognises it (see the table above). */
export function failureKind(
  failure: TokenEndpointFailure,
  rule?: (failure: TokenEndpointFailure) => FailureRule | undefined,
): FailureRule | undefined {
  const { status, oauthError } = failure;
  if (status === 429 || status >= 500) return ['transient', `the provider answered HTTP ${status}`];
  const specific = rule?.(failure);
  if (specific) return specific;
  if (oauthError) {
    const byError = BY_ERROR[oauthError.error];
    if (byError) return byError;
  }
  if (status === 401 || status === 403) return ['client', 'the provider rejected the client'];
  if (status === 404) return ['client', 'the endpoint does not exist (check the configured URLs)'];
  return undefined;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** `invalid_grant, ACS50012` or `HTTP 401`: what the provider said, safe to show. */
export function failureLabel(failure: TokenEndpointFailure, errorNumber?: string): string {
  const { oauthError, status } = failure;
  if (!oauthError) return errorNumber ? `HTTP ${status}, ${errorNumber}` : `HTTP ${status}`;
  return errorNumber ? `${oauthError.error}, ${errorNumber}` : oauthError.error;
}

/**
 * Classifies an RFC 6749 §5.2 token endpoint error (or an RFC 8628 §3.1 device authorization error)
 * for the refresh context. The `detail` says what to do in plain words and names the `error` (and a
 * provider's error number), never `error_description`, which can echo request data.
 */
export function classifyOAuthError(
  failure: TokenEndpointFailure,
  context: OAuthClassifyContext = {},
): BrokerError {
  const { connectionId, otherScope = false, secretName } = context;
  const rule = failureKind(failure, context.rule);
  let kind: FailureKind | 'unknown' = rule?.[0] ?? 'unknown';
  const reason = rule?.[1] ?? 'the provider gave an answer the broker does not recognise';
  if (
    otherScope &&
    (failure.oauthError?.error === 'consent_required' || context.otherScopeConsent?.(failure) === true)
  ) {
    kind = 'scope';
  }
  if (kind === 'scope' && !otherScope) kind = 'client';

  const said = failureLabel(failure, context.errorNumber);
  const retryAfter = failure.retryAfter ?? DEFAULT_RETRY_AFTER_S;
  const fields = context.clientFields ?? 'clientId, redirectUri, endpoints and credential';
  let code: ErrorCode;
  let detail: string;
  switch (kind) {
    case 'dead':
      code = 'consent_required';
      detail = `${capitalize(reason)} (${said}). Open /api/start?connection=${connectionId ?? 'ID'} to consent again.`;
      break;
    case 'client':
      code = 'client_misconfigured';
      if (rule?.[0] === 'scope') {
        detail =
          `The provider refuses the connection's own scopes: ${reason} (${said}). ` +
          'Fix "scopes" in its configuration, then consent again.';
      } else if (
        context.secretRejected
          ? context.secretRejected(failure)
          : failure.oauthError?.error === 'invalid_client' || failure.status === 401
      ) {
        detail =
          `The provider rejected the client: ${reason} (${said}). Check the connection's ${fields}; ` +
          `store the current client secret with: broker secrets set ${secretName ?? '<credential.secretName>'}.`;
      } else {
        detail = `The provider rejected the client: ${reason} (${said}). Check the connection's ${fields}.`;
      }
      break;
    case 'scope':
      code = 'invalid_request';
      detail =
        `The provider cannot issue a token for the requested scope: ${reason} (${said}). ` +
        "Ask for a scope this connection was consented for, or add it to the connection's scopes and consent again.";
      break;
    case 'transient':
      code = 'upstream_unavailable';
      detail = `${capitalize(reason)} (${said}); nothing was changed. Try again in ${retryAfter} s.`;
      break;
    case 'unknown':
      code = 'upstream_unavailable';
      detail =
        `${capitalize(reason)} (${said}); nothing was changed. ` +
        "Try again later; if it persists, check the connection's configuration.";
      break;
  }
  const providerError: ProviderErrorInfo = {
    error: failure.oauthError?.error ?? `http_${failure.status}`,
    aadsts: failure.oauthError?.aadsts,
    status: failure.status,
  };
  return new BrokerError(code, detail, {
    connectionId,
    providerError,
    retryAfter: code === 'upstream_unavailable' ? retryAfter : undefined,
  });
}

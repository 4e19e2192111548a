import { BrokerError, type ErrorCode, type ProviderErrorInfo } from '../errors.js';
import type { TokenEndpointFailure } from './token-response.js';

/** `Retry-After` (seconds) handed to callers of a transient failure when the provider named none. */
export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * What a token endpoint error means for a connection, in the refresh context:
 *
 * | kind        | code                   | the connection…                                     |
 * |-------------|------------------------|-----------------------------------------------------|
 * | `dead`      | `consent_required`     | needs a person to consent again                     |
 * | `client`    | `client_misconfigured` | has an app registration or secret the provider refuses |
 * | `scope`     | `invalid_request`      | was asked for a scope its grant cannot give (caller's fault) |
 * | `transient` | `upstream_unavailable` | is fine; the provider is down or throttling         |
 * | `unknown`   | `upstream_unavailable` | is left alone: an unrecognised answer must not kill a grant |
 *
 * Lookup order: 429/5xx status → transient; else the AADSTS number (most specific); else the
 * RFC 6749 §5.2 / OpenID `error`; else 401/404 without a known error → client (wrong client or
 * endpoint); else unknown. Two context rules: a scope error on the connection's *own* scopes is the
 * configuration's fault (client), and missing consent for an *explicitly requested other* scope is
 * the caller's (scope) — re-consenting with the configured scopes would not fix it, and marking the
 * connection dead would break every other caller.
 */
type Kind = 'dead' | 'client' | 'scope' | 'transient';
type Rule = readonly [Kind, string];

const BY_AADSTS: Readonly<Record<number, Rule>> = {
  70008: ['dead', 'the refresh token has expired'],
  700081: ['dead', 'the refresh token reached its maximum lifetime'],
  700082: ['dead', 'the refresh token expired after 90 days without use'],
  700084: ['dead', 'the refresh token was issued to a single-page app and lives only 24 hours'],
  50173: ['dead', 'the grant was revoked, for example after a password change'],
  50132: ['dead', 'the session was revoked after a password change or expiry'],
  50133: ['dead', 'the session was revoked after a password change or expiry'],
  50055: ['dead', "the account's password has expired"],
  50057: ['dead', 'the account is disabled'],
  50053: ['dead', 'the account is locked'],
  54005: ['dead', 'the authorization code was already redeemed'],
  70043: ['dead', 'conditional access requires a fresh sign-in'],
  50076: ['dead', 'multi-factor authentication is required'],
  50079: ['dead', 'multi-factor authentication registration is required'],
  50078: ['dead', 'the multi-factor authentication proof has expired'],
  50158: ['dead', 'an external security challenge is required'],
  530003: ['dead', 'conditional access requires a managed device'],
  53003: ['dead', 'conditional access blocked the sign-in'],
  65001: ['dead', 'consent for the requested permissions is missing'],
  65004: ['dead', 'the person declined consent'],
  7000215: ['client', 'the client secret is wrong'],
  7000222: ['client', 'the client secret has expired'],
  7000218: ['client', 'the app expects a client secret and none was sent'],
  700025: ['client', 'the app is a public client and must not be sent a client secret'],
  90023: ['client', 'the request is not allowed for this kind of client'],
  700016: ['client', 'no app with this client id exists in the tenant'],
  7000112: ['client', 'the app is disabled'],
  50011: ['client', 'the redirect URI is not registered on the app'],
  500113: ['client', 'the app has no redirect URI registered'],
  700054: ['client', 'the app registration does not allow this response type'],
  90002: ['client', 'the tenant does not exist'],
  50194: ['client', 'the app is not configured as multi-tenant'],
  9002326: ['client', 'the redirect URI is registered as a single-page app, not as web'],
  65005: ['client', 'the app requests permissions it does not declare'],
  70011: ['scope', 'the scope is not valid'],
  28000: ['scope', 'the scopes are not valid together'],
  28002: ['scope', 'the scope is not valid for this resource'],
  28003: ['scope', 'the scope is empty or not valid'],
  650053: ['scope', 'the scope does not exist on the resource'],
  500011: ['scope', 'the resource does not exist in the tenant'],
  50196: ['transient', 'the provider detected a request loop and is throttling'],
  50000: ['transient', 'the provider had an internal error'],
};

const BY_ERROR: Readonly<Record<string, Rule>> = {
  invalid_grant: ['dead', 'the provider no longer accepts the grant'],
  interaction_required: ['dead', 'the provider requires the person to sign in again'],
  login_required: ['dead', 'the provider requires the person to sign in again'],
  consent_required: ['dead', 'consent for the requested permissions is missing'],
  access_denied: ['dead', 'the provider denied access'],
  invalid_client: ['client', 'the provider rejected the client credentials'],
  unauthorized_client: ['client', 'the app is not allowed to use this grant'],
  unsupported_grant_type: ['client', 'the app is not allowed to use this grant type'],
  invalid_request: ['client', 'the provider called the request malformed'],
  invalid_scope: ['scope', 'the scope is not valid'],
  invalid_resource: ['scope', 'the resource is not valid'],
  temporarily_unavailable: ['transient', 'the provider is temporarily unavailable'],
  server_error: ['transient', 'the provider had an internal error'],
};

/** Consent that is missing for one scope only (the grant itself is alive). */
const SCOPE_CONSENT_AADSTS = new Set([65001]);

export interface ClassifyContext {
  connectionId?: string;
  /** The refresh asked for scopes other than the connection's own (`/api/token?scope=`). */
  otherScope?: boolean;
  /** `credential.secretName`, named in the advice when the secret is wrong or expired. */
  secretName?: string;
}

function ruleOf(failure: TokenEndpointFailure): Rule | undefined {
  const { status, oauthError } = failure;
  if (status === 429 || status >= 500) return ['transient', `the provider answered HTTP ${status}`];
  if (oauthError?.aadsts !== undefined) {
    const byCode = BY_AADSTS[oauthError.aadsts];
    if (byCode) return byCode;
  }
  if (oauthError) {
    // Entra sometimes reports a bad scope as invalid_request with an AADSTS number this table lacks;
    // the description is read (never shown) to tell it from a malformed request.
    if (oauthError.error === 'invalid_request' && /\bscope\b/i.test(oauthError.errorDescription ?? '')) {
      return ['scope', 'the scope is not valid'];
    }
    const byError = BY_ERROR[oauthError.error];
    if (byError) return byError;
  }
  if (status === 401) return ['client', 'the provider rejected the client'];
  if (status === 404) return ['client', 'the token endpoint does not exist (check authority and tenant)'];
  return undefined;
}

function label(failure: TokenEndpointFailure): string {
  const { oauthError, status } = failure;
  if (!oauthError) return `HTTP ${status}`;
  return oauthError.aadsts === undefined
    ? oauthError.error
    : `${oauthError.error}, AADSTS${oauthError.aadsts}`;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * Classifies an RFC 6749 §5.2 (and OpenID Connect Core §3.1.2.6) token endpoint error from Entra
 * ID — or any provider speaking those codes — for the refresh context (see the table above). The
 * `detail` says what to do in plain words; it names the `error` and AADSTS number but never repeats
 * `error_description`, which can echo request data.
 */
export function classifyEntraError(
  failure: TokenEndpointFailure,
  context: ClassifyContext = {},
): BrokerError {
  const { connectionId, otherScope = false, secretName } = context;
  const rule = ruleOf(failure);
  let kind: Kind | 'unknown' = rule?.[0] ?? 'unknown';
  const reason = rule?.[1] ?? 'the provider gave an answer the broker does not recognise';
  const aadsts = failure.oauthError?.aadsts;
  if (
    otherScope &&
    (failure.oauthError?.error === 'consent_required' || SCOPE_CONSENT_AADSTS.has(aadsts ?? 0))
  ) {
    kind = 'scope';
  }
  if (kind === 'scope' && !otherScope) kind = 'client';

  const said = label(failure);
  const retryAfter = failure.retryAfter ?? DEFAULT_RETRY_AFTER_S;
  let code: ErrorCode;
  let detail: string;
  switch (kind) {
    case 'dead':
      code = 'consent_required';
      detail = `${capitalize(reason)} (${said}). Open /api/start?connection=${connectionId ?? 'ID'} to consent again.`;
      break;
    case 'client':
      code = 'client_misconfigured';
      detail =
        rule?.[0] === 'scope'
          ? `The provider refuses the connection's own scopes: ${reason} (${said}). ` +
            'Fix "scopes" in its configuration, then consent again.'
          : `The provider rejected the app: ${reason} (${said}). ` +
            (aadsts === 7000215 || aadsts === 7000222
              ? `Store a valid client secret with: broker secrets set ${secretName ?? '<credential.secretName>'}.`
              : "Check the app registration and the connection's clientId, tenant, redirectUri and credential.");
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
        "Try again later; if it persists, check the connection's app registration.";
      break;
  }
  const providerError: ProviderErrorInfo = {
    error: failure.oauthError?.error ?? `http_${failure.status}`,
    aadsts,
    status: failure.status,
  };
  return new BrokerError(code, detail, {
    connectionId,
    providerError,
    retryAfter: code === 'upstream_unavailable' ? retryAfter : undefined,
  });
}

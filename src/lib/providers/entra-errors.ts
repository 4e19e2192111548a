import type { BrokerError, FailureRow } from '../errors.js';
import {
  classifyOAuthError,
  type OAuthClassifyContext,
  failureRow as row,
  type TokenEndpointFailure,
} from '../oauth/index.js';

/**
 * Entra ID's table: AADSTS number → class (hence the HTTP answer), remedy and words, consulted before
 * the RFC 6749 codes of `oauth/classify.ts` (docs/design.md, "Telling people what to do"). One row
 * says what a number means for the grant *and* what a person does about it, so the answer and the
 * advice cannot disagree (test/unit/failure-tables.test.ts walks every row).
 */
export const ENTRA_ERRORS: Readonly<Record<number, FailureRow>> = {
  // The grant is dead: a new consent fixes it.
  700082: row('dead', 'reconnect', 'the refresh token expired after 90 days without use'),
  50173: row(
    'dead',
    'reconnect',
    "the grant was revoked, usually because the account's password was changed",
  ),
  70043: row('dead', 'reconnect', 'a Conditional Access sign-in frequency policy requires a fresh sign-in'),
  70008: row('dead', 'reconnect', 'the refresh token has expired'),
  700081: row('dead', 'reconnect', 'the refresh token reached its maximum lifetime'),
  700084: row(
    'dead',
    'reconnect',
    'the refresh token was issued to a single-page app and lived only 24 hours',
  ),
  50132: row('dead', 'reconnect', 'the session was revoked after a password change or expiry'),
  50133: row('dead', 'reconnect', 'the session was revoked after a password change or expiry'),
  50055: row('dead', 'reconnect', "the account's password has expired (change it first)"),
  50057: row('dead', 'reconnect', 'the account is disabled (an admin must enable it first)'),
  50053: row('dead', 'reconnect', 'the account is locked (wait or have an admin unlock it first)'),
  54005: row('dead', 'reconnect', 'the authorization code was already redeemed'),
  65004: row('dead', 'reconnect', 'consent was declined at sign-in'),
  // Multi-factor or step-up authentication.
  50076: row('dead', 'mfa_then_reconnect', 'multi-factor authentication is required'),
  50079: row('dead', 'mfa_then_reconnect', 'the account must register for multi-factor authentication'),
  50078: row('dead', 'mfa_then_reconnect', 'the multi-factor authentication proof has expired'),
  50158: row('dead', 'mfa_then_reconnect', 'an external security challenge (step-up) is required'),
  // Conditional Access blocks the broker.
  53000: row('dead', 'conditional_access', 'Conditional Access requires a compliant device'),
  53001: row('dead', 'conditional_access', 'Conditional Access requires a domain-joined device'),
  53002: row('dead', 'conditional_access', 'Conditional Access requires an approved app'),
  53003: row('dead', 'conditional_access', 'a Conditional Access policy blocked the sign-in'),
  530003: row('dead', 'conditional_access', 'Conditional Access requires a managed device'),
  // The app lacks (admin) consent. For an extra `scope=` 65001 is the caller's: see `otherScopeConsent`.
  65001: row('dead', 'admin_consent', 'the app has no consent for the permissions it asks for'),
  90094: row('dead', 'admin_consent', 'the permissions need an administrator to consent'),
  90008: row('dead', 'admin_consent', 'the app needs consent for its Microsoft Graph permissions'),
  // An app-only connection's app was never admitted to the tenant (no service principal there).
  7000229: row(
    'client',
    'admin_consent',
    'the app has no service principal in the tenant',
    'service_principal',
  ),
  // The client secret (or certificate) is wrong or expired.
  7000222: row('client', 'new_client_secret', 'the client secret has expired'),
  7000215: row('client', 'new_client_secret', 'the client secret is wrong'),
  700027: row(
    'client',
    'new_client_secret',
    'the client assertion failed signature validation: upload the certificate to the app registration (it is not registered there, or has expired)',
  ),
  // The app registration or the connection's configuration is wrong.
  700016: row(
    'client',
    'fix_app_registration',
    'no app with this client id exists in the tenant',
    'client_id',
  ),
  90002: row('client', 'fix_app_registration', 'the tenant does not exist', 'client_id'),
  50194: row('client', 'fix_app_registration', 'the app is not configured as multi-tenant', 'client_id'),
  7000112: row('client', 'fix_app_registration', 'the app is disabled', 'client_id'),
  50011: row(
    'client',
    'fix_app_registration',
    'the redirect URI is not registered on the app',
    'redirect_uri',
  ),
  500113: row('client', 'fix_app_registration', 'the app has no redirect URI registered', 'redirect_uri'),
  9002326: row(
    'client',
    'fix_app_registration',
    'the redirect URI is registered as a single-page app, not as Web',
    'redirect_uri',
  ),
  7000218: row(
    'client',
    'fix_app_registration',
    'the app expects a client secret and none was sent',
    'credential',
  ),
  700025: row(
    'client',
    'fix_app_registration',
    'the app is a public client and must not be sent a client secret',
    'credential',
  ),
  90023: row(
    'client',
    'fix_app_registration',
    'the request is not allowed for this kind of client',
    'credential',
  ),
  9002313: row('client', 'fix_app_registration', 'the provider called the request malformed'),
  700054: row('client', 'fix_app_registration', 'the app registration does not allow this response type'),
  65005: row('client', 'fix_app_registration', 'the app asks for permissions it does not declare', 'scopes'),
  // Client assertions: a certificate's time (700024) or a federated managed identity token (7002xx, 70021).
  700024: row(
    'client',
    'fix_app_registration',
    'the client assertion is not within its valid time range: check the clock of the host',
  ),
  50013: row('client', 'fix_app_registration', 'the client assertion is invalid'),
  70021: row(
    'client',
    'fix_app_registration',
    "no federated credential of the app matches the managed identity's token: add one (issuer, subject = the identity's object id, audience api://AzureADTokenExchange), see docs/secretless.md",
  ),
  700211: row(
    'client',
    'fix_app_registration',
    "no federated credential of the app has the token's issuer: check the tenant in its issuer",
  ),
  700212: row(
    'client',
    'fix_app_registration',
    "no federated credential of the app has the token's audience (api://AzureADTokenExchange)",
  ),
  700213: row(
    'client',
    'fix_app_registration',
    "no federated credential of the app has the managed identity's object id as its subject",
  ),
  // A scope the provider refuses: the caller's when asked for with `scope=`, else the configuration's.
  70011: row('scope', 'fix_app_registration', 'the scope is not valid', 'scopes'),
  28000: row('scope', 'fix_app_registration', 'the scopes are not valid together', 'scopes'),
  28002: row('scope', 'fix_app_registration', 'the scope is not valid for this resource', 'scopes'),
  28003: row('scope', 'fix_app_registration', 'the scopes are empty or not valid', 'scopes'),
  650053: row('scope', 'fix_app_registration', 'the scope does not exist on the resource', 'scopes'),
  500011: row('scope', 'fix_app_registration', 'the resource does not exist in the tenant', 'scopes'),
  1002012: row(
    'scope',
    'fix_app_registration',
    'a client credentials request needs one {resource}/.default scope',
    'scopes',
  ),
  // The provider is busy or down: nothing to do, the broker retries.
  50196: row('transient', 'wait', 'the provider detected a request loop and is throttling'),
  50000: row('transient', 'wait', 'the provider had an internal error'),
  90033: row('transient', 'wait', "Entra's directory service is temporarily unavailable"),
};

/** Consent that is missing for one scope only (the grant itself is alive). */
const SCOPE_CONSENT_AADSTS = new Set([65001]);

/**
 * A federated credential takes a while to reach every Entra node after it is created: AADSTS70021
 * for a managed identity's token then means "not yet", not "wrong", and the next pass succeeds. A
 * federated credential that is truly missing keeps answering it, and the status page shows it.
 */
export const PROPAGATING = row(
  'transient',
  'wait',
  'the federated credential of the app does not match the managed identity yet (AADSTS70021: just created, still propagating, or missing; see docs/secretless.md)',
);

const NO_SERVICE_PRINCIPAL = row(
  'client',
  'admin_consent',
  'the app has no service principal in the tenant',
  'service_principal',
);

export type ClassifyContext = Omit<OAuthClassifyContext, 'rule' | 'errorNumber' | 'otherScopeConsent'>;

/** Entra's own knowledge, consulted before the RFC 6749 codes of `classifyOAuthError`. */
function entraRule(failure: TokenEndpointFailure, context: ClassifyContext): FailureRow | undefined {
  const { status, oauthError } = failure;
  if (oauthError?.aadsts === 70021 && context.credentialType === 'managedIdentity') return PROPAGATING;
  // For a client credentials request "no such app in the tenant" is an app never admitted there.
  if (oauthError?.aadsts === 700016 && context.appOnly) return NO_SERVICE_PRINCIPAL;
  if (oauthError?.aadsts !== undefined) {
    const byCode = ENTRA_ERRORS[oauthError.aadsts];
    if (byCode) return byCode;
  }
  // Entra sometimes reports a bad scope as invalid_request with an AADSTS number this table lacks;
  // the description is read (never shown) to tell it from a malformed request.
  if (oauthError?.error === 'invalid_request' && /\bscope\b/i.test(oauthError.errorDescription ?? '')) {
    return row('scope', 'fix_app_registration', 'the scope is not valid', 'scopes');
  }
  if (!oauthError && status === 404) {
    return row(
      'client',
      'fix_app_registration',
      'the token endpoint does not exist (check authority and tenant)',
      'client_id',
    );
  }
  return undefined;
}

/**
 * Classifies an RFC 6749 §5.2 (and OpenID Connect Core §3.1.2.6) token endpoint error from Entra
 * ID: the generic classification with Entra's table in front. The `detail` names the `error` and
 * AADSTS number but never repeats `error_description`, which can echo request data.
 */
export function classifyEntraError(
  failure: TokenEndpointFailure,
  context: ClassifyContext = {},
): BrokerError {
  const aadsts = failure.oauthError?.aadsts;
  return classifyOAuthError(failure, {
    ...context,
    rule: (f) => entraRule(f, context),
    errorNumber: aadsts === undefined ? undefined : `AADSTS${aadsts}`,
    otherScopeConsent: (f) => SCOPE_CONSENT_AADSTS.has(f.oauthError?.aadsts ?? 0),
    clientFields: 'app registration and its clientId, tenant, redirectUri and credential',
  });
}

import type { BrokerError } from '../errors.js';
import { classifyOAuthError, type FailureRule, type TokenEndpointFailure } from '../oauth/index.js';

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
type Rule = FailureRule;

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
  7000229: ['client', 'the app has no service principal in the tenant (an admin has not admitted it)'],
  7000112: ['client', 'the app is disabled'],
  50011: ['client', 'the redirect URI is not registered on the app'],
  500113: ['client', 'the app has no redirect URI registered'],
  700054: ['client', 'the app registration does not allow this response type'],
  90002: ['client', 'the tenant does not exist'],
  50194: ['client', 'the app is not configured as multi-tenant'],
  9002326: ['client', 'the redirect URI is registered as a single-page app, not as web'],
  65005: ['client', 'the app requests permissions it does not declare'],
  70011: ['scope', 'the scope is not valid'],
  1002012: ['scope', 'a client credentials request needs one {resource}/.default scope'],
  28000: ['scope', 'the scopes are not valid together'],
  28002: ['scope', 'the scope is not valid for this resource'],
  28003: ['scope', 'the scope is empty or not valid'],
  650053: ['scope', 'the scope does not exist on the resource'],
  500011: ['scope', 'the resource does not exist in the tenant'],
  // Client assertions: a certificate (700027, 700024) or a federated managed identity token (7002xx, 70021).
  700027: [
    'client',
    'the client assertion failed signature validation: upload the certificate to the app registration',
  ],
  700024: ['client', 'the client assertion is not within its valid time range: check the clock of the host'],
  50013: ['client', 'the client assertion is invalid'],
  70021: [
    'client',
    "no federated credential of the app matches the managed identity's token: add one (issuer, subject = the identity's object id, audience api://AzureADTokenExchange), see docs/secretless.md",
  ],
  700211: [
    'client',
    "no federated credential of the app has the token's issuer: check the tenant in its issuer",
  ],
  700212: [
    'client',
    "no federated credential of the app has the token's audience (api://AzureADTokenExchange)",
  ],
  700213: [
    'client',
    "no federated credential of the app has the managed identity's object id as its subject",
  ],
  50196: ['transient', 'the provider detected a request loop and is throttling'],
  50000: ['transient', 'the provider had an internal error'],
};

/** Consent that is missing for one scope only (the grant itself is alive). */
const SCOPE_CONSENT_AADSTS = new Set([65001]);
/** The client secret itself is wrong or expired: the advice names the secret to set. */
const SECRET_AADSTS = new Set([7000215, 7000222]);

export interface ClassifyContext {
  connectionId?: string;
  /** The refresh asked for scopes other than the connection's own (`/api/token?scope=`). */
  otherScope?: boolean;
  /** `credential.secretName`, named in the advice when the secret is wrong or expired. */
  secretName?: string;
  /** `credential.type`: a managed identity's AADSTS70021 is transient, and no secret advice for assertions. */
  credentialType?: 'secret' | 'managedIdentity' | 'certificate';
}

/**
 * A federated credential takes a while to reach every Entra node after it is created: AADSTS70021
 * for a managed identity's token then means "not yet", not "wrong", and the next pass succeeds. A
 * federated credential that is truly missing keeps answering it, and the status page shows it.
 */
const PROPAGATING: Rule = [
  'transient',
  'the federated credential of the app does not match the managed identity yet (AADSTS70021: just created, still propagating, or missing; see docs/secretless.md)',
];

/** Entra's own knowledge, consulted before the RFC 6749 codes of `classifyOAuthError`. */
function entraRule(failure: TokenEndpointFailure, context: ClassifyContext): Rule | undefined {
  const { status, oauthError } = failure;
  if (oauthError?.aadsts === 70021 && context.credentialType === 'managedIdentity') return PROPAGATING;
  if (oauthError?.aadsts !== undefined) {
    const byCode = BY_AADSTS[oauthError.aadsts];
    if (byCode) return byCode;
  }
  // Entra sometimes reports a bad scope as invalid_request with an AADSTS number this table lacks;
  // the description is read (never shown) to tell it from a malformed request.
  if (oauthError?.error === 'invalid_request' && /\bscope\b/i.test(oauthError.errorDescription ?? '')) {
    return ['scope', 'the scope is not valid'];
  }
  if (!oauthError && status === 404) {
    return ['client', 'the token endpoint does not exist (check authority and tenant)'];
  }
  return undefined;
}

/**
 * Classifies an RFC 6749 §5.2 (and OpenID Connect Core §3.1.2.6) token endpoint error from Entra
 * ID for the refresh context (see the table above): the generic classification with Entra's AADSTS
 * table in front. The `detail` names the `error` and AADSTS number but never repeats
 * `error_description`, which can echo request data.
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
    // Only a secret can be put right with `broker secrets set`; an assertion's fix is in its reason.
    secretRejected: (f) =>
      (context.credentialType ?? 'secret') === 'secret' && SECRET_AADSTS.has(f.oauthError?.aadsts ?? 0),
    clientFields: 'app registration and its clientId, tenant, redirectUri and credential',
  });
}

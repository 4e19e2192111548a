import type { AppOnlyConnection } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import {
  type ErrorClass,
  lookupRemedy,
  parseErrorTag,
  type RemedyContext,
  remedyForTag,
} from './remedies.js';

/**
 * Remedies of app-only connections (`"flow": "client_credentials"`). Nobody signs in, so the
 * delegated advice ("open /api/start and sign in again") never fits: what fixes an app-only
 * connection is an admin of its tenant (the service principal, its application permissions), the
 * app registration, or the credential. The kinds are the shared ones; the words are these.
 */

/** "No service principal in the tenant": the app was never admitted to it (Entra AADSTS7000229, 700016). */
const NO_SERVICE_PRINCIPAL = new Set([7000229, 700016]);
/** The application permissions were not granted by an admin. */
const NO_ADMIN_CONSENT = new Set([65001, 90094, 90008, 500021]);
/** The scope is not one `{resource}/.default`, or the resource is unknown to the tenant. */
const BAD_SCOPE = new Set([1002012, 70011, 28000, 28002, 28003, 650053, 500011]);

function tenantOf(c: AppOnlyConnection): string {
  return c.provider === 'entra' ? c.tenant : 'the provider';
}

function adminConsentUrl(c: AppOnlyConnection): string | undefined {
  if (c.provider !== 'entra') return undefined;
  return `${c.authority.replace(/\/+$/, '')}/${encodeURIComponent(c.tenant)}/adminconsent?client_id=${encodeURIComponent(c.clientId)}`;
}

export function appOnlyRemedyForTag(
  tag: string | undefined,
  fallback: ErrorClass,
  ctx: RemedyContext & { connection: AppOnlyConnection },
): Remedy {
  const c = ctx.connection;
  const { error, aadsts } = parseErrorTag(tag ?? '');
  const say = (kind: Remedy['kind'], what: string, action: string): Remedy => ({
    kind,
    text: `Connection ${c.id}: ${what}. ${action}`,
  });
  const consentUrl = adminConsentUrl(c);
  const grant = consentUrl
    ? `an admin of tenant ${tenantOf(c)} opens ${consentUrl} (or runs New-ServicePrincipal in Exchange Online PowerShell, docs/app-only.md) and grants the application permissions`
    : `an admin of ${tenantOf(c)} grants client ${c.clientId} its permissions`;
  if (aadsts !== undefined && NO_SERVICE_PRINCIPAL.has(aadsts)) {
    return say(
      'admin_consent',
      `app ${c.clientId} has no service principal in tenant ${tenantOf(c)}`,
      `To admit it, ${grant}; the next token request then succeeds.`,
    );
  }
  if ((aadsts !== undefined && NO_ADMIN_CONSENT.has(aadsts)) || error === 'consent_required') {
    return say(
      'admin_consent',
      `the application permissions of app ${c.clientId} have no admin consent in tenant ${tenantOf(c)}`,
      `To fix it, ${grant}.`,
    );
  }
  if (
    (aadsts !== undefined && BAD_SCOPE.has(aadsts)) ||
    error === 'invalid_scope' ||
    error === 'invalid_target' ||
    error === 'invalid_resource'
  ) {
    return say(
      'fix_app_registration',
      `the provider refuses the scope ${c.scopes.join(' ')}`,
      'Set "scopes" to the one "{resource}/.default" of the API the app was granted (e.g. https://outlook.office365.com/.default for IMAP, POP and SMTP).',
    );
  }
  const [kind] = lookupRemedy(tag, fallback);
  if (kind === 'conditional_access') {
    return say(
      'conditional_access',
      'a Conditional Access policy for workload identities blocks the app',
      `An Entra admin must allow app ${c.clientId} (its service principal) and the broker's location in the policy.`,
    );
  }
  // Person-shaped advice (sign in again, MFA) cannot fix an app: the registration or its grant can.
  if (kind === 'reconnect' || kind === 'mfa_then_reconnect' || kind === 'renew_before_deadline') {
    return say(
      'fix_app_registration',
      `the provider refused the app-only token request (${tag ?? fallback})`,
      `Check app ${c.clientId}, its application permissions in tenant ${tenantOf(c)} and the connection's "credential".`,
    );
  }
  return remedyForTag(tag, fallback, ctx);
}

/** The one remedy of an app-only connection: its last failure, else none (not yet requested is not a fault). */
export function appOnlyRemedy(
  lastError: string | undefined,
  ctx: RemedyContext & { connection: AppOnlyConnection },
): Remedy | null {
  return lastError ? appOnlyRemedyForTag(lastError, 'client_misconfigured', ctx) : null;
}

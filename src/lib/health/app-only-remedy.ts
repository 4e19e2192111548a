import type { AppOnlyConnection } from '../config/connections.js';
import type { Failure, Remedy } from '../errors.js';

/**
 * The words of app-only connections' remedies (`"flow": "client_credentials"`). Nobody signs in, so
 * the delegated advice ("open /api/start and sign in again") never fits: what fixes an app-only
 * connection is an admin of its tenant (the service principal, its application permissions), the app
 * registration, or the credential. The kind was decided by the provider's table with the app-only
 * context (`oauth/classify.ts`, `applyContext`); this only says it. Undefined: the delegated words fit
 * (a new client secret, waiting).
 */
export function appOnlyWords(
  failure: Failure,
  ctx: { connection: AppOnlyConnection; publicUrl: string },
): Remedy | undefined {
  const c = ctx.connection;
  const tenant = c.provider === 'entra' ? c.tenant : 'the provider';
  const say = (kind: Remedy['kind'], what: string, action: string): Remedy => ({
    kind,
    text: `Connection ${c.id}: ${what}. ${action}`,
  });
  const consentUrl =
    c.provider === 'entra'
      ? `${c.authority.replace(/\/+$/, '')}/${encodeURIComponent(c.tenant)}/adminconsent?client_id=${encodeURIComponent(c.clientId)}`
      : undefined;
  const grant = consentUrl
    ? `an admin of tenant ${tenant} opens ${consentUrl} (or runs New-ServicePrincipal in Exchange Online PowerShell, docs/app-only.md) and grants the application permissions`
    : `an admin of ${tenant} grants client ${c.clientId} its permissions`;
  switch (failure.remedy) {
    case 'admin_consent':
      if (failure.hint === 'service_principal') {
        return say(
          'admin_consent',
          `app ${c.clientId} has no service principal in tenant ${tenant}`,
          `To admit it, ${grant}; the next token request then succeeds.`,
        );
      }
      return say(
        'admin_consent',
        `the application permissions of app ${c.clientId} have no admin consent in tenant ${tenant}`,
        `To fix it, ${grant}.`,
      );
    case 'conditional_access':
      return say(
        'conditional_access',
        'a Conditional Access policy for workload identities blocks the app',
        `An Entra admin must allow app ${c.clientId} (its service principal) and the broker's location in the policy.`,
      );
    case 'fix_app_registration':
      if (failure.hint === 'scopes') {
        return say(
          'fix_app_registration',
          `the provider refuses the scope ${c.scopes.join(' ')}`,
          'Set "scopes" to the one "{resource}/.default" of the API the app was granted (e.g. https://outlook.office365.com/.default for IMAP, POP and SMTP).',
        );
      }
      return say(
        'fix_app_registration',
        `the provider refused the app-only token request: ${failure.reason}`,
        `Check app ${c.clientId}, its application permissions in tenant ${tenant} and the connection's "credential".`,
      );
    case 'reconnect':
    case 'mfa_then_reconnect':
    case 'renew_before_deadline':
      // Person-shaped advice cannot fix an app (applyContext already maps it; old stored tags may not).
      return appOnlyWords({ ...failure, remedy: 'fix_app_registration', hint: undefined }, ctx);
    default:
      return undefined;
  }
}

import type { AccountInfo } from '../providers/provider.js';
import type { GrantService } from '../tokens/grant-service.js';
import type { TokenService } from '../tokens/token-service.js';

/** What consent needs of invitations: using one up (`InvitationService.claim`). */
export interface InvitationClaims {
  claim(connectionId: string, invitationId: string, account: string | undefined): Promise<void>;
}

/**
 * Invitations: the `beforeStore` of a consent begun from an invitation link (its id sealed in the
 * consent state), or undefined for any other consent.
 */
export function claimInvitation(
  invitations: InvitationClaims | undefined,
  connectionId: string,
  invitationId: string | undefined,
  account: AccountInfo,
): (() => Promise<void>) | undefined {
  if (invitationId === undefined) return undefined;
  if (!invitations)
    throw new Error('a consent carries an invitation, but the broker has no invitation service');
  return () => invitations.claim(connectionId, invitationId, account.account);
}

export interface ConsentResult {
  connectionId: string;
  account?: string;
  tenant?: string;
}

export interface CompleteConsentDeps {
  tokens: TokenService;
  grants: GrantService;
}

/**
 * The end of every consent, whatever the flow: stores the refresh token (the grant service checks the
 * account, under the connection's lock), drops cached tokens of the old grant and primes the new one.
 */
export async function completeConsent(
  deps: CompleteConsentDeps,
  /**
   * Exactly what `GrantService.storeConsent` takes (connection, tokens, account, by, replace,
   * beforeStore: documented there), passed on as they are, so the two lists cannot drift apart.
   */
  ...consent: Parameters<GrantService['storeConsent']>
): Promise<ConsentResult> {
  const [connection, tokens, account] = consent;
  const tags = await deps.grants.storeConsent(...consent);
  deps.tokens.invalidate(connection.id);
  deps.tokens.prime(connection.id, tokens, tags.account);
  return { connectionId: connection.id, account: account.account, tenant: account.tenant };
}

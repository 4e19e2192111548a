import type { Person } from '../auth/person-auth.js';
import type { Connection } from '../config/connections.js';
import type { AccountInfo, TokenSet } from '../providers/provider.js';
import type { GrantService } from '../tokens/grant-service.js';
import type { TokenService } from '../tokens/token-service.js';

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
  connection: Connection,
  tokens: TokenSet,
  account: AccountInfo,
  by?: Person,
  /** The consent began with `replace=true` (account pinning, docs/design.md, "Error codes": `account_mismatch`). */
  replace = false,
): Promise<ConsentResult> {
  const tags = await deps.grants.storeConsent(connection, tokens, account, by, replace);
  deps.tokens.invalidate(connection.id);
  deps.tokens.prime(connection.id, tokens, tags.account);
  return { connectionId: connection.id, account: account.account, tenant: account.tenant };
}

import type { Connection } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
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
  logger: Logger;
}

/** Refuses consent by anyone but `expectedAccount` (compared case-insensitively); nothing is stored then. */
export function checkExpectedAccount(
  connection: Connection,
  account: string | undefined,
  logger: Logger,
): void {
  const expected = connection.expectedAccount;
  if (!expected) return;
  if (account?.toLowerCase() === expected.toLowerCase()) return;
  logger.warn('consent.account_mismatch', {
    connection: connection.id,
    account,
    expectedAccount: expected,
  });
  throw new BrokerError(
    'account_mismatch',
    `Connection "${connection.id}" must be connected by ${expected}, but ${account ?? 'an unknown account'} signed in. Nothing was stored; sign in again with ${expected}.`,
    { connectionId: connection.id },
  );
}

/**
 * The end of every consent, whatever the flow: checks `expectedAccount`, stores the refresh token
 * (under the connection's lock), drops cached tokens of the old grant and primes the new one.
 */
export async function completeConsent(
  deps: CompleteConsentDeps,
  connection: Connection,
  tokens: TokenSet,
  account: AccountInfo,
): Promise<ConsentResult> {
  checkExpectedAccount(connection, account.account, deps.logger);
  const tags = await deps.grants.storeConsent(connection, tokens, account);
  deps.tokens.invalidate(connection.id);
  deps.tokens.prime(connection.id, tokens, tags.account);
  return { connectionId: connection.id, account: account.account, tenant: account.tenant };
}

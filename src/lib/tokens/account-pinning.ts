import type { Connection } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import { startPath } from '../links.js';
import type { Logger } from '../logger.js';
import type { AccountInfo } from '../providers/provider.js';
import type { GrantTags } from './grant-store.js';

/**
 * The one gate every consent passes (both flows and `import`): anyone but `expectedAccount` (compared
 * case-insensitively) is refused, and nothing is stored.
 */
export function checkExpectedAccount(connection: Connection, info: AccountInfo, logger: Logger): void {
  const expected = connection.expectedAccount?.toLowerCase();
  if (!expected) return;
  const account = info.account;
  // An e-mail the provider did not verify proves nothing: anyone can type one into their profile.
  if (info.emailVerified !== false && account?.toLowerCase() === expected) return;
  if (info.accountId?.toLowerCase() === expected) return;
  logger.warn('consent.account_mismatch', {
    connection: connection.id,
    account,
    expectedAccount: connection.expectedAccount,
  });
  throw new BrokerError(
    'account_mismatch',
    `Connection "${connection.id}" must be connected by ${connection.expectedAccount}, but ${account ?? 'an unknown account'}${info.emailVerified === false ? ' (an unverified e-mail)' : ''} signed in. Nothing was stored; sign in again with ${connection.expectedAccount}.`,
    { connectionId: connection.id },
  );
}

/** Whether a consent comes from the account a connection is already connected as (Entra: same `oid` and `tid`). */
function sameAccount(stored: GrantTags, info: AccountInfo): boolean {
  const eq = (a: string | undefined, b: string | undefined) => a?.toLowerCase() === b?.toLowerCase();
  // The provider named nobody (ACS when SharePoint's currentuser fails): consent still stands (docs/design.md, "Stored data").
  if (info.accountId === undefined && info.account === undefined) return true;
  if (stored.tenant && info.tenant && !eq(stored.tenant, info.tenant)) return false;
  if (stored.accountId) return eq(stored.accountId, info.accountId);
  // Stored before ids were: the account name is what there is.
  if (stored.account) return eq(stored.account, info.account);
  return true;
}

/**
 * Account pinning (docs/design.md, `account_mismatch`): once connected, a consent by another account is
 * refused unless it began with `replace=true` (`/api/start?…&replace=true`, `broker import --replace`).
 */
export function checkPinnedAccount(
  connection: Connection,
  stored: GrantTags | undefined,
  info: AccountInfo,
  replace: boolean,
  logger: Logger,
): void {
  if (!stored || replace || sameAccount(stored, info)) return;
  logger.warn('consent.account_mismatch', {
    connection: connection.id,
    account: info.account,
    connectedAccount: stored.account,
  });
  throw new BrokerError(
    'account_mismatch',
    `Connection "${connection.id}" is connected as ${stored.account ?? 'another account'}, but ${info.account ?? 'an unknown account'} signed in. Nothing was stored. To connect it to another account, start with ${startPath(connection.id, undefined, true)} ("Change account" on the status page).`,
    { connectionId: connection.id },
  );
}

import { type Connection, isAppOnly } from '../config/connections.js';
import { BrokerError } from '../errors.js';

/**
 * The XOAUTH2 `user` an app-only connection may name (docs/app-only.md): one of its `mailboxes`,
 * compared case-insensitively as Exchange compares addresses, spelled as configured. Anything
 * else — and any `user=` on a delegated connection, whose account is fixed by its consent, even
 * when it names that account — is 403 `mailbox_not_allowed`, decided before the provider is asked.
 */
export function allowedMailbox(connection: Connection, user: string): string {
  const wanted = user.toLowerCase();
  const listed = isAppOnly(connection)
    ? connection.mailboxes?.find((m) => m.toLowerCase() === wanted)
    : undefined;
  if (listed !== undefined) return listed;
  throw new BrokerError(
    'mailbox_not_allowed',
    isAppOnly(connection)
      ? `Connection "${connection.id}" does not list that mailbox. An operator adds it to the connection's "mailboxes" once the app has been granted it in Exchange (docs/app-only.md).`
      : `Connection "${connection.id}" is delegated: its account is the one that consented, so "user" cannot be chosen. Leave "user" out.`,
    { connectionId: connection.id },
  );
}

import type { Connection } from '../config/connections.js';
import { BrokerError } from '../errors.js';

/**
 * `scope=` may ask only for what the connection lists in `scopes` or `allowedScopes`, compared
 * case-insensitively as Entra compares them (docs/design.md, "Hostile input"). A consent for mail must not mint tokens for
 * every resource the app registration was ever granted; refused before any provider call.
 */
export function checkRequestedScopes(connection: Connection, requested: readonly string[]): void {
  const allowed = new Set(
    [...connection.scopes, ...(connection.allowedScopes ?? [])].map((s) => s.toLowerCase()),
  );
  const refused = requested.filter((s) => !allowed.has(s.toLowerCase()));
  if (refused.length === 0) return;
  throw new BrokerError(
    'scope_not_allowed',
    `Connection "${connection.id}" may not vend ${refused.length === 1 ? 'the scope' : 'the scopes'} ${refused.join(' ')}. An operator lists ${refused.length === 1 ? 'it' : 'them'} in the connection's "allowedScopes" to allow ${refused.length === 1 ? 'it' : 'them'}.`,
    { connectionId: connection.id },
  );
}

/**
 * Whether a `scope=` request asks only for the connection's own scopes (case-insensitively): only a
 * refresh for those says anything about the grant itself (docs/design.md, "Hostile input").
 */
export function isOwnScopes(connection: Connection, requested: readonly string[] | undefined): boolean {
  if (!requested || requested.length === 0) return true;
  const own = new Set(connection.scopes.map((s) => s.toLowerCase()));
  return requested.every((s) => own.has(s.toLowerCase()));
}

import { type Connection, isAppOnly } from '../config/connections.js';
import { BrokerError } from '../errors.js';

/**
 * Consent, device login and refresh-token import are for delegated connections only: an app-only
 * connection (`"flow": "client_credentials"`) has nobody to sign in and no refresh token, and no
 * `rt-` secret may ever be written for it.
 */
export function assertDelegated(connection: Connection): void {
  if (!isAppOnly(connection)) return;
  throw new BrokerError(
    'invalid_request',
    `Connection "${connection.id}" is app-only ("flow": "client_credentials"): nobody signs in and there is no refresh token. Its tokens come straight from /api/token (docs/app-only.md).`,
    { connectionId: connection.id },
  );
}

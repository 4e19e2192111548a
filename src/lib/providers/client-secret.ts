import { type Connection, credentialSecretName } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import type { DialectDeps } from './provider.js';

/** The configured client secret, or `client_misconfigured` naming the command that stores it. */
export async function requireClientSecret(deps: DialectDeps, connection: Connection): Promise<string> {
  const secret = await deps.clientSecret();
  if (secret) return secret;
  const name = credentialSecretName(connection.credential) ?? '<credential.secretName>';
  throw new BrokerError(
    'client_misconfigured',
    `The client secret "${name}" of connection ${connection.id} is not in the secret store. ` +
      `Set it with: broker secrets set ${name}`,
    { connectionId: connection.id },
  );
}

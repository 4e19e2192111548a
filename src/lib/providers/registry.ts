import type { Clock } from '../clock.js';
import { type Connection, credentialSecretName } from '../config/connections.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SecretStore } from '../store/secret-store.js';
import { entraDialect } from './entra.js';
import type { ManagedIdentityTokens } from './managed-identity.js';
import { oauth2Dialect } from './oauth2.js';
import type { DialectFactory, ProviderDialect } from './provider.js';
import { sharepointAcsDialect } from './sharepoint-acs.js';

const FACTORIES: Partial<Record<Connection['provider'], DialectFactory>> = {
  entra: entraDialect,
  'sharepoint-acs': sharepointAcsDialect,
  oauth2: oauth2Dialect,
};

/** Client secrets change rarely; reading one per refresh would double the store's traffic. */
const CLIENT_SECRET_TTL_MS = 5 * 60 * 1000;

export interface DialectRegistryDeps {
  store: SecretStore;
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  timeoutMs?: number;
  maxRetries?: number;
  /** Managed identity tokens for `managedIdentity` credentials. */
  managedIdentity?: ManagedIdentityTokens;
  /** Certificate `notAfter` by secret name (lowercase), learned when a dialect loads one. */
  certificateExpiries?: Map<string, Date>;
}

export function assertProvidersSupported(connections: Iterable<Connection>): void {
  for (const c of connections) {
    if (!FACTORIES[c.provider]) {
      throw new ConfigError(
        `connection "${c.id}": field "provider": "${c.provider}" is not supported by this version yet`,
      );
    }
  }
}

/**
 * One dialect per connection, built on first use and kept while the connection's definition stays
 * the same: a connection changed at runtime (or its template) gets a new one at its next use.
 */
export function createDialectLookup(deps: DialectRegistryDeps): (connection: Connection) => ProviderDialect {
  const dialects = new Map<string, { connection: Connection; dialect: ProviderDialect }>();
  const readSecret = clientSecretReader(deps);
  return (connection) => {
    const known = dialects.get(connection.id);
    // The catalog hands out one object per definition: only a new object can be a changed one.
    let dialect =
      known && (known.connection === connection || sameDefinition(known.connection, connection))
        ? known.dialect
        : undefined;
    if (!dialect) {
      const factory = FACTORIES[connection.provider];
      if (!factory)
        throw new ConfigError(`provider "${connection.provider}" is not supported by this version yet`);
      const secretName = credentialSecretName(connection.credential);
      const { managedIdentity, certificateExpiries } = deps;
      dialect = factory(connection, {
        fetch: deps.fetch,
        clock: deps.clock,
        logger: deps.logger,
        timeoutMs: deps.timeoutMs,
        maxRetries: deps.maxRetries,
        clientSecret: async () => (secretName ? readSecret(secretName) : undefined),
        managedIdentityToken: managedIdentity
          ? (clientId, audience) => managedIdentity.token(clientId, audience, connection.id)
          : undefined,
        certificateLoaded: (name, notAfter) => certificateExpiries?.set(name.toLowerCase(), notAfter),
      });
      dialects.set(connection.id, { connection, dialect });
    }
    return dialect;
  };
}

function sameDefinition(a: Connection, b: Connection): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Cached by secret name: several mailboxes sharing one app registration read its secret once. */
function clientSecretReader(deps: DialectRegistryDeps): (name: string) => Promise<string | undefined> {
  const cache = new Map<string, { value: string; until: number }>();
  return async (name) => {
    const hit = cache.get(name.toLowerCase());
    if (hit && hit.until > deps.clock.now()) return hit.value;
    const secret = await deps.store.getSecret(name);
    // A missing secret is not cached, so `broker secrets set` takes effect at once.
    if (secret)
      cache.set(name.toLowerCase(), { value: secret.value, until: deps.clock.now() + CLIENT_SECRET_TTL_MS });
    else cache.delete(name.toLowerCase());
    return secret?.value;
  };
}

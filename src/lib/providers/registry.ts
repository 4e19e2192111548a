import type { Clock } from '../clock.js';
import type { Connection } from '../config/connections.js';
import { ConfigError } from '../config/settings.js';
import type { Logger } from '../logger.js';
import type { SecretStore } from '../store/secret-store.js';
import { entraDialect } from './entra.js';
import type { DialectFactory, ProviderDialect } from './provider.js';

const FACTORIES: Partial<Record<Connection['provider'], DialectFactory>> = {
  entra: entraDialect,
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

/** One dialect per connection, built on first use and kept. */
export function createDialectLookup(deps: DialectRegistryDeps): (connection: Connection) => ProviderDialect {
  const dialects = new Map<string, ProviderDialect>();
  return (connection) => {
    let dialect = dialects.get(connection.id);
    if (!dialect) {
      const factory = FACTORIES[connection.provider];
      if (!factory)
        throw new ConfigError(`provider "${connection.provider}" is not supported by this version yet`);
      dialect = factory(connection, {
        fetch: deps.fetch,
        clock: deps.clock,
        logger: deps.logger,
        timeoutMs: deps.timeoutMs,
        maxRetries: deps.maxRetries,
        clientSecret: clientSecretReader(connection, deps),
      });
      dialects.set(connection.id, dialect);
    }
    return dialect;
  };
}

function clientSecretReader(
  connection: Connection,
  deps: DialectRegistryDeps,
): () => Promise<string | undefined> {
  let cached: { value: string | undefined; until: number } | undefined;
  return async () => {
    const name = connection.credential?.secretName;
    if (!name) return undefined;
    if (cached && cached.until > deps.clock.now()) return cached.value;
    const secret = await deps.store.getSecret(name);
    // A missing secret is not cached, so `broker secrets set` takes effect at once.
    cached = secret ? { value: secret.value, until: deps.clock.now() + CLIENT_SECRET_TTL_MS } : undefined;
    return secret?.value;
  };
}

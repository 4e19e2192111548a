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
 * Dialects that hold state between calls, so one is kept per connection: oauth2 its discovery
 * document, sharepoint-acs the realm it discovered and when it last logged the retirement.
 */
const KEPT: ReadonlySet<Connection['provider']> = new Set(['oauth2', 'sharepoint-acs']);

/**
 * The dialect of a connection. A stateless one (entra: endpoints and scopes derived from the
 * connection, the client secret cached by name here, certificates by content in certificate.ts) is
 * built afresh at each use, a microsecond on a path that then makes an HTTP request, and left to
 * the collector: kept, its dozen closures cost ~3 KB per connection, which at 100,000 connections
 * was most of the heap (docs/architecture.md, "Memory"). Stateful ones are built on first use and
 * kept, as before.
 */
export function createDialectLookup(deps: DialectRegistryDeps): (connection: Connection) => ProviderDialect {
  // Keyed by the connection object the catalog hands out (one per definition): a deleted or
  // changed connection's dialect goes with its object, never kept for an id that is gone.
  const kept = new WeakMap<Connection, ProviderDialect>();
  const readSecret = clientSecretReader(deps);
  const build = (connection: Connection): ProviderDialect => {
    const factory = FACTORIES[connection.provider];
    if (!factory)
      throw new ConfigError(`provider "${connection.provider}" is not supported by this version yet`);
    const secretName = credentialSecretName(connection.credential);
    const { managedIdentity, certificateExpiries } = deps;
    return factory(connection, {
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
  };
  return (connection) => {
    if (!KEPT.has(connection.provider)) return build(connection);
    let dialect = kept.get(connection);
    if (!dialect) {
      dialect = build(connection);
      kept.set(connection, dialect);
    }
    return dialect;
  };
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

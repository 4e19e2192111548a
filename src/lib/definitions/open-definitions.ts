import type { TokenCredential } from '@azure/identity';
import type { Clock } from '../clock.js';
import type { Settings } from '../config/settings.js';
import { hostCredential } from '../lock/open-lock.js';
import type { DefinitionStore } from './definition-store.js';
import { FileDefinitionStore } from './file-definition-store.js';

export interface OpenDefinitionsOptions {
  /** For identity-based host storage; default from `AzureWebJobsStorage__credential` / `__clientId`. */
  credential?: TokenCredential;
  env?: NodeJS.ProcessEnv;
}

/** Few, quick retries: an admin or a lookup hears 503 within seconds when storage is down. */
const RETRY = { maxRetries: 2, retryDelayInMs: 100, maxRetryDelayInMs: 1000 };

/**
 * The one place the definition store is chosen (docs/connections.md): Azure Table Storage in the
 * Functions host storage when `AzureWebJobsStorage` (or its identity-based form) is set, else the
 * embedded file store in `BROKER_DATA_DIR` — whichever holds the secrets. Never Key Vault:
 * definitions are not secrets, and the vault's transaction budget belongs to refresh tokens. The
 * Tables SDK is loaded only when used.
 */
export async function openDefinitions(
  settings: Pick<Settings, 'dataDir' | 'hostStorage'>,
  clock: Pick<Clock, 'now'>,
  options: OpenDefinitionsOptions = {},
): Promise<DefinitionStore> {
  const storage = settings.hostStorage;
  if (!storage) return FileDefinitionStore.open(settings.dataDir, clock);
  const [{ TableClient }, { TableDefinitionStore, DEFINITIONS_TABLE }] = await Promise.all([
    import('@azure/data-tables'),
    import('./table-definition-store.js'),
  ]);
  if (storage.kind === 'connectionString') {
    // Azurite (`UseDevelopmentStorage=true`, or its endpoints) speaks plain http on loopback.
    const insecure = /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;|Endpoint=http:\/\//i.test(
      storage.connectionString,
    );
    const client = TableClient.fromConnectionString(storage.connectionString, DEFINITIONS_TABLE, {
      allowInsecureConnection: insecure,
      retryOptions: RETRY,
    });
    return new TableDefinitionStore(client, clock);
  }
  const credential = options.credential ?? (await hostCredential(storage, options.env ?? process.env));
  const client = new TableClient(storage.tableServiceUri, DEFINITIONS_TABLE, credential, {
    retryOptions: RETRY,
  });
  return new TableDefinitionStore(client, clock);
}

import type { Clock } from '../clock.js';
import type { Settings } from '../config/settings.js';
import type { DefinitionStore } from './definition-store.js';
import { FileDefinitionStore } from './file-definition-store.js';

/**
 * The one place the definition store is chosen (docs/connections.md): Azure Table Storage in the
 * Functions host storage when `AzureWebJobsStorage` (or its identity-based form) is set, else the
 * embedded file store in `BROKER_DATA_DIR` — whichever holds the secrets. Never Key Vault:
 * definitions are not secrets, and the vault's transaction budget belongs to refresh tokens.
 */
export async function openDefinitions(
  settings: Pick<Settings, 'dataDir' | 'hostStorage'>,
  clock: Pick<Clock, 'now'>,
): Promise<DefinitionStore> {
  return FileDefinitionStore.open(settings.dataDir, clock);
}

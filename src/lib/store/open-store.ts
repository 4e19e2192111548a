import type { TokenCredential } from '@azure/identity';
import type { Settings } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import { FileSecretStore } from './file-store.js';
import type { KeyVaultSecretStoreOptions } from './keyvault-store.js';
import type { SecretStore } from './secret-store.js';

export interface OpenStoreOptions {
  /** Key Vault credential; default `DefaultAzureCredential` (managed identity in Azure, `az login` locally). */
  credential?: TokenCredential;
  /** Key Vault client options (timeouts, retries, TLS); production leaves them at their defaults. */
  keyVault?: KeyVaultSecretStoreOptions;
  /** For `AZURE_CLIENT_ID` (a user-assigned managed identity); default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The one place the secret store is chosen (docs/design.md, "App settings"): Key Vault when
 * `KEY_VAULT_URL` is set, else the embedded file store in `BROKER_DATA_DIR`. The Azure SDK is loaded
 * only when Key Vault is used, so the embedded path starts fast.
 */
export async function openStore(settings: Settings, options: OpenStoreOptions = {}): Promise<SecretStore> {
  if (!settings.keyVaultUrl) return FileSecretStore.open(settings.dataDir);
  const url = new URL(settings.keyVaultUrl);
  if (url.protocol !== 'https:' || url.pathname.replace(/\/+$/, '') !== '' || url.search || url.hash) {
    throw new ConfigError(
      'setting KEY_VAULT_URL: must be the vault URL, https://<vault name>.vault.azure.net (Key Vault is only reached over https)',
    );
  }
  const credential = options.credential ?? (await defaultCredential(options.env ?? process.env));
  const { KeyVaultSecretStore } = await import('./keyvault-store.js');
  return new KeyVaultSecretStore(url.origin, credential, {
    pacing: settings.keyVaultPacing,
    ...options.keyVault,
  });
}

async function defaultCredential(env: NodeJS.ProcessEnv): Promise<TokenCredential> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  const clientId = env.AZURE_CLIENT_ID;
  return new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {});
}

import type { TokenCredential } from '@azure/identity';
import type { StoragePipelineOptions } from '@azure/storage-blob';
import type { HostStorage, Settings } from '../config/settings.js';
import type { Logger } from '../logger.js';
import { BlobLeaseLock, type BlobLeaseLockOptions, LOCK_CONTAINER } from './blob-lease-lock.js';
import { InProcessLock, type RefreshLock } from './lock.js';

export interface OpenLockOptions {
  /** For identity-based host storage; default from `AzureWebJobsStorage__credential` / `__clientId`. */
  credential?: TokenCredential;
  /** Lease timing (tests shorten the waits); production takes the defaults. */
  lease?: Omit<BlobLeaseLockOptions, 'container' | 'logger' | 'unlockedWhenUnreachable'>;
  /** For `AZURE_CLIENT_ID`; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** Few, quick retries: a caller is answered within seconds when storage is down. */
const STORAGE_PIPELINE: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, tryTimeoutInMs: 3000, retryDelayInMs: 100, maxRetryDelayInMs: 1000 },
};

/**
 * The one place the refresh lock is chosen (docs/scale-out.md): a blob lease in the Functions host
 * storage whenever `AzureWebJobsStorage` (or its identity-based form) is configured, unless
 * `REFRESH_LOCK=process`; an in-process mutex otherwise. The storage SDK is loaded only when used.
 */
export async function openLock(
  settings: Settings,
  logger: Logger,
  options: OpenLockOptions = {},
): Promise<RefreshLock> {
  if (settings.refreshLock === 'process' || !settings.hostStorage) return new InProcessLock();
  const service = await blobService(settings.hostStorage, options);
  return new BlobLeaseLock({
    ...options.lease,
    container: service.getContainerClient(LOCK_CONTAINER),
    logger,
    unlockedWhenUnreachable: settings.refreshLock === 'lease-or-unlocked',
  });
}

async function blobService(storage: HostStorage, options: OpenLockOptions) {
  const { BlobServiceClient } = await import('@azure/storage-blob');
  if (storage.kind === 'connectionString')
    return BlobServiceClient.fromConnectionString(storage.connectionString, STORAGE_PIPELINE);
  const credential = options.credential ?? (await hostCredential(storage, options.env ?? process.env));
  return new BlobServiceClient(storage.blobServiceUri, credential, STORAGE_PIPELINE);
}

/** As the Functions host reads it: `__credential=managedidentity` (+ `__clientId`), else DefaultAzureCredential. */
export async function hostCredential(
  storage: Extract<HostStorage, { kind: 'identity' }>,
  env: NodeJS.ProcessEnv,
): Promise<TokenCredential> {
  const { DefaultAzureCredential, ManagedIdentityCredential } = await import('@azure/identity');
  if (storage.credential?.toLowerCase() === 'managedidentity')
    return new ManagedIdentityCredential(storage.clientId ? { clientId: storage.clientId } : {});
  const clientId = storage.clientId ?? env.AZURE_CLIENT_ID;
  return new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {});
}

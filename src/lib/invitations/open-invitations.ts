import type { TokenCredential } from '@azure/identity';
import type { HostStorage, Settings } from '../config/settings.js';
import { FileInvitationStore } from './file-invitation-store.js';
import type { InvitationStore } from './invitation-store.js';
import { INVITATION_TABLE, TableInvitationStore } from './table-invitation-store.js';

/**
 * Where invitations live (beside the definitions, docs/design.md, "Connections at runtime"): Table Storage
 * of `AzureWebJobsStorage` when it names a table endpoint, else the data folder. A connection string
 * that lists only a blob endpoint (Azurite's blob service alone) has no tables: the folder then.
 */
export async function openInvitationStore(
  settings: Pick<Settings, 'dataDir' | 'hostStorage'>,
  options: { credential?: TokenCredential } = {},
): Promise<InvitationStore> {
  const storage = settings.hostStorage;
  const target = storage ? tableTarget(storage) : undefined;
  if (!storage || !target) return new FileInvitationStore(settings.dataDir);
  const { TableClient } = await import('@azure/data-tables');
  if (target.kind === 'connectionString') {
    const insecure = /DefaultEndpointsProtocol=http;|TableEndpoint=http:\/\//i.test(target.value);
    return new TableInvitationStore(
      TableClient.fromConnectionString(target.value, INVITATION_TABLE, { allowInsecureConnection: insecure }),
    );
  }
  const { DefaultAzureCredential, ManagedIdentityCredential } = await import('@azure/identity');
  const identity = storage.kind === 'identity' ? storage : undefined;
  const credential =
    options.credential ??
    (identity?.credential?.toLowerCase() === 'managedidentity'
      ? new ManagedIdentityCredential(identity.clientId ? { clientId: identity.clientId } : {})
      : new DefaultAzureCredential(
          (identity?.clientId ?? process.env.AZURE_CLIENT_ID)
            ? { managedIdentityClientId: identity?.clientId ?? process.env.AZURE_CLIENT_ID }
            : {},
        ));
  return new TableInvitationStore(new TableClient(target.value, INVITATION_TABLE, credential));
}

type TableTarget = { kind: 'connectionString'; value: string } | { kind: 'url'; value: string };

function tableTarget(storage: HostStorage): TableTarget | undefined {
  if (storage.kind === 'connectionString') {
    const cs = storage.connectionString;
    if (/UseDevelopmentStorage=true/i.test(cs) || /TableEndpoint=/i.test(cs))
      return { kind: 'connectionString', value: cs };
    // Explicit endpoints without a table one: no tables in this account's string.
    if (/(Blob|Queue|File)Endpoint=/i.test(cs)) return undefined;
    return { kind: 'connectionString', value: cs };
  }
  // https://{account}.blob.core.windows.net → https://{account}.table.core.windows.net
  const url = new URL(storage.blobServiceUri);
  if (!url.hostname.includes('.blob.')) return undefined;
  url.hostname = url.hostname.replace('.blob.', '.table.');
  return { kind: 'url', value: url.toString().replace(/\/$/, '') };
}

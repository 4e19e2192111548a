import * as z from 'zod';
import { ConfigError } from '../errors.js';
import { GUID } from './connections.js';
import { parseDuration } from './duration.js';
import { endpointProblem, trimSlash } from './urls.js';

/** An optional URL setting: https, or plain http on a loopback host only. */
const endpointSetting = z
  .string()
  .optional()
  .superRefine((v, ctx) => {
    const problem = v === undefined ? undefined : endpointProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** App settings (environment) of docs/design.md ("App settings"), validated once at start-up. */
const settingsSchema = z.object({
  KEY_VAULT_URL: z.url().optional(),
  // Transactions/writes this process sends the vault per 10 s, or `off` (docs/status-and-rotation.md, "Key Vault service limits").
  KEY_VAULT_PACING: z
    .string()
    .regex(
      /^(off|[1-9]\d{0,5}\/[1-9]\d{0,5})$/,
      'must be TRANSACTIONS/WRITES per 10 seconds, such as 2000/150, or off',
    )
    .default('2000/150'),
  BROKER_DATA_DIR: z.string().min(1).default('.broker'),
  BROKER_PUBLIC_URL: endpointSetting,
  ALERT_WEBHOOK_URL: endpointSetting,
  // Invitations: needs_consent events of pinned connections carry a fresh invitation link.
  ALERT_RECONNECT_LINKS: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'),
  BROKER_CONNECTIONS_FILE: z.string().min(1).optional(),
  BROKER_CONNECTIONS: z.string().min(1).optional(),
  ROTATION_SCHEDULE: z
    .string()
    .regex(
      /^\S+( \S+){5}$/,
      'must be an NCRONTAB expression with 6 fields (second minute hour day month weekday)',
    )
    .default('0 */5 * * * *'),
  REFRESH_AHEAD: z
    .string()
    .refine((v) => parseDuration(v) !== undefined, 'must be an ISO-8601 duration such as PT5M')
    .default('PT5M'),
  ROTATION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  WARN_BEFORE: z
    .string()
    .refine((v) => parseDuration(v) !== undefined, 'must be an ISO-8601 duration such as P14D')
    .default('P14D'),
  PORT: z.coerce.number().int().min(0).max(65535).default(7071),
  BROKER_FUNCTION_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  WEBSITE_HOSTNAME: z.string().optional(),
  REFRESH_LOCK: z.enum(['lease', 'lease-or-unlocked', 'process']).default('lease'),
  // The host storage of Azure Functions, as its host reads it: a connection string, or identity-based.
  AzureWebJobsStorage: z.string().optional(),
  AzureWebJobsStorage__accountName: z
    .string()
    .regex(/^[a-z0-9]{3,24}$/, 'must be a storage account name (3-24 lowercase letters and digits)')
    .optional(),
  AzureWebJobsStorage__blobServiceUri: z.url().optional(),
  AzureWebJobsStorage__tableServiceUri: z.url().optional(),
  AzureWebJobsStorage__credential: z.string().optional(),
  AzureWebJobsStorage__clientId: z.string().optional(),
  CALLER_AUTH: z.enum(['key', 'entra']).default('key'),
  ADMIN_AUTH: z.enum(['key', 'easyauth']).default('key'),
  BROKER_TENANT_ID: z.string().regex(GUID, 'must be a tenant id (GUID)').optional(),
  BROKER_API_CLIENT_ID: z
    .string()
    .regex(GUID, "must be the broker app registration's client id (GUID)")
    .optional(),
  BROKER_API_URI: z.string().min(1).optional(),
  BROKER_AUTHORITY: z
    .string()
    .default('https://login.microsoftonline.com')
    .superRefine((v, ctx) => {
      const problem = endpointProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  ADMIN_ROLE: z.string().min(1).default('Broker.Admin'),
  // Set by App Service when built-in authentication is on; only then is X-MS-CLIENT-PRINCIPAL the platform's.
  WEBSITE_AUTH_ENABLED: z.string().optional(),
});

/** Where the cross-instance refresh lock lives: the Functions host storage (docs/design.md, "Stored data"). */
export type HostStorage =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      blobServiceUri: string;
      /** Where managed connection definitions live (`__tableServiceUri`, else the account's table endpoint). */
      tableServiceUri: string;
      /** `managedidentity` selects ManagedIdentityCredential; otherwise DefaultAzureCredential. */
      credential?: string;
      clientId?: string;
    };

/**
 * `lease` (default): a blob lease in the host storage when it is configured, an in-process mutex
 * otherwise; storage unreachable = refresh refused. `lease-or-unlocked`: the same, but refreshes run
 * under the in-process mutex alone while storage is unreachable (providers that tolerate reuse, like
 * Entra). `process`: the in-process mutex only, even with host storage (one instance).
 */
export type RefreshLockMode = 'lease' | 'lease-or-unlocked' | 'process';

export interface Settings {
  keyVaultUrl?: string;
  /** Key Vault requests per 10 s this process allows itself (all, and writes); `false` = unpaced. */
  keyVaultPacing: { transactionsPer10s: number; writesPer10s: number } | false;
  dataDir: string;
  publicUrl: string;
  connectionsFile?: string;
  connectionsInline?: string;
  rotationSchedule: string;
  refreshAheadMs: number;
  rotationConcurrency: number;
  /** Deadlines closer than this are warnings in the log and on the status page. */
  warnBeforeMs: number;
  port: number;
  functionKey?: string;
  refreshLock: RefreshLockMode;
  /** From `AzureWebJobsStorage` / `AzureWebJobsStorage__*`; absent = none configured. */
  hostStorage?: HostStorage;
  /** How services calling `/api/token` prove who they are (docs/design.md, "Who may ask"). */
  callerAuth: CallerAuthSettings;
  /** How people reach `/api/start`, `/api/start/poll` and `/api/status`. */
  adminAuth: AdminAuthSettings;
  /** `ALERT_WEBHOOK_URL`: where state-change events are POSTed; absent = log lines only. */
  alertWebhookUrl?: string;
  /** `ALERT_RECONNECT_LINKS`: `needs_consent` events of pinned connections carry `reconnectUrl`. */
  alertReconnectLinks: boolean;
}

export type CallerAuthSettings =
  | { mode: 'key' }
  | {
      mode: 'entra';
      tenantId: string;
      /** Where the tenant's signing keys are published: `{authority}/{tenantId}/discovery/v2.0/keys`. */
      authority: string;
      /** `aud` values a caller's token may carry: the broker app's client id and its URI. */
      audiences: string[];
    };

export type AdminAuthSettings =
  | { mode: 'key' }
  | {
      mode: 'easyauth';
      tenantId: string;
      role: string;
      /** `WEBSITE_AUTH_ENABLED=True`: the platform strips and sets `X-MS-CLIENT-PRINCIPAL` itself. */
      platformEnabled: boolean;
    };

export function loadSettings(env: NodeJS.ProcessEnv): Settings {
  // Empty strings in app settings mean "unset", as the portal leaves them.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = settingsSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `setting ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid app settings:\n  ${lines.join('\n  ')}`);
  }
  const s = parsed.data;
  const publicUrl =
    s.BROKER_PUBLIC_URL ??
    (s.WEBSITE_HOSTNAME ? `https://${s.WEBSITE_HOSTNAME}` : `http://localhost:${s.PORT}`);
  return {
    keyVaultUrl: s.KEY_VAULT_URL,
    keyVaultPacing: keyVaultPacing(s.KEY_VAULT_PACING),
    dataDir: s.BROKER_DATA_DIR,
    publicUrl: trimSlash(publicUrl),
    connectionsFile: s.BROKER_CONNECTIONS_FILE,
    connectionsInline: s.BROKER_CONNECTIONS,
    rotationSchedule: s.ROTATION_SCHEDULE,
    refreshAheadMs: parseDuration(s.REFRESH_AHEAD)!,
    rotationConcurrency: s.ROTATION_CONCURRENCY,
    warnBeforeMs: parseDuration(s.WARN_BEFORE)!,
    port: s.PORT,
    functionKey: s.BROKER_FUNCTION_KEY,
    refreshLock: s.REFRESH_LOCK,
    hostStorage: hostStorage(s),
    alertWebhookUrl: s.ALERT_WEBHOOK_URL,
    alertReconnectLinks: s.ALERT_RECONNECT_LINKS === 'true',
    callerAuth: callerAuth(s),
    adminAuth: adminAuth(s),
  };
}

function keyVaultPacing(value: string): Settings['keyVaultPacing'] {
  if (value === 'off') return false;
  const [transactionsPer10s, writesPer10s] = value.split('/').map(Number) as [number, number];
  return { transactionsPer10s, writesPer10s };
}

function callerAuth(s: z.infer<typeof settingsSchema>): CallerAuthSettings {
  if (s.CALLER_AUTH === 'key') return { mode: 'key' };
  const missing = [
    s.BROKER_TENANT_ID ? undefined : 'BROKER_TENANT_ID',
    s.BROKER_API_CLIENT_ID ? undefined : 'BROKER_API_CLIENT_ID',
  ].filter((name) => name !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      `Invalid app settings:\n  setting CALLER_AUTH: entra needs ${missing.join(' and ')} (the tenant and the broker's own app registration whose tokens callers present)`,
    );
  }
  const audiences = [s.BROKER_API_CLIENT_ID!, ...(s.BROKER_API_URI ? [s.BROKER_API_URI] : [])];
  return {
    mode: 'entra',
    tenantId: s.BROKER_TENANT_ID!.toLowerCase(),
    authority: trimSlash(s.BROKER_AUTHORITY),
    audiences,
  };
}

function adminAuth(s: z.infer<typeof settingsSchema>): AdminAuthSettings {
  if (s.ADMIN_AUTH === 'key') return { mode: 'key' };
  if (!s.BROKER_TENANT_ID) {
    throw new ConfigError(
      'Invalid app settings:\n  setting ADMIN_AUTH: easyauth needs BROKER_TENANT_ID (the tenant whose people sign in)',
    );
  }
  return {
    mode: 'easyauth',
    tenantId: s.BROKER_TENANT_ID.toLowerCase(),
    role: s.ADMIN_ROLE,
    platformEnabled: s.WEBSITE_AUTH_ENABLED?.toLowerCase() === 'true',
  };
}

/** The connection string wins, as in the Functions host; else `__blobServiceUri`, else `__accountName`. */
function hostStorage(s: z.infer<typeof settingsSchema>): HostStorage | undefined {
  if (s.AzureWebJobsStorage) return { kind: 'connectionString', connectionString: s.AzureWebJobsStorage };
  const blobServiceUri =
    s.AzureWebJobsStorage__blobServiceUri ??
    (s.AzureWebJobsStorage__accountName
      ? `https://${s.AzureWebJobsStorage__accountName}.blob.core.windows.net`
      : undefined);
  if (!blobServiceUri) return undefined;
  const tableServiceUri =
    s.AzureWebJobsStorage__tableServiceUri ??
    (s.AzureWebJobsStorage__accountName
      ? `https://${s.AzureWebJobsStorage__accountName}.table.core.windows.net`
      : blobServiceUri.replace('.blob.', '.table.'));
  return {
    kind: 'identity',
    blobServiceUri: trimSlash(blobServiceUri),
    tableServiceUri: trimSlash(tableServiceUri),
    credential: s.AzureWebJobsStorage__credential,
    clientId: s.AzureWebJobsStorage__clientId,
  };
}

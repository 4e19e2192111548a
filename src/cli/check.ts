import type { Connection } from '../lib/config/connections.js';
import { DAY_MS } from '../lib/config/duration.js';
import { loadConnections } from '../lib/config/load.js';
import { loadSettings, type Settings } from '../lib/config/settings.js';
import { BrokerError, ConfigError } from '../lib/errors.js';
import {
  type CertificateBundle,
  CertificateBundleError,
  parseCertificateBundle,
} from '../lib/providers/certificate.js';
import {
  type ManagedIdentityCredentialFactory,
  ManagedIdentityTokens,
  tokenExchangeAudience,
} from '../lib/providers/managed-identity.js';
import { assertProvidersSupported } from '../lib/providers/registry.js';
import { openStore } from '../lib/store/open-store.js';
import type { SecretProperties, SecretStore } from '../lib/store/secret-store.js';

/** The secret `broker check` writes (a new version each run; its value is a timestamp, nothing secret). */
export const CHECK_SECRET = 'broker-check';
const WARN_BEFORE_MS = 14 * DAY_MS;
const MANAGED_IDENTITY_TIMEOUT_MS = 5000;

export interface CheckOptions {
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  out?: (line: string) => void;
  /** Tests inject the store (e.g. Key Vault with a test credential); default `openStore`. */
  openStore?: (settings: Settings) => Promise<SecretStore>;
  /** Epoch ms, for client secret expiry; default `Date.now`. */
  now?: () => number;
  /** The credential of `managedIdentity` connections; default the SDK's `ManagedIdentityCredential`. */
  managedIdentityCredential?: ManagedIdentityCredentialFactory;
  /** How long the one managed identity `getToken` may take (default 5 s). */
  managedIdentityTimeoutMs?: number;
}

/**
 * A certificate credential: its PEM bundle parses and its key matches (subject, the SHA-1
 * thumbprint as Entra shows it, notAfter), and it is not about to expire. Never prints the bundle.
 */
async function checkCertificate(
  store: SecretStore,
  what: string,
  name: string,
  expiresOn: Date | undefined,
  report: {
    fail: (what: string, err?: unknown) => void;
    expiry: (what: string, expiresOn: Date, present: string, renew: string) => void;
  },
): Promise<void> {
  let bundle: CertificateBundle;
  try {
    const pem = (await store.getSecret(name))?.value ?? '';
    bundle = parseCertificateBundle(pem);
  } catch (err) {
    const why = err instanceof CertificateBundleError ? err.message : 'cannot be read';
    report.fail(
      `${what} ${why}; store the PEM bundle (private key and certificate) with "broker secrets set ${name}"`,
    );
    return;
  }
  const notAfter = expiresOn && expiresOn < bundle.notAfter ? expiresOn : bundle.notAfter;
  report.expiry(
    what,
    notAfter,
    `present (subject ${bundle.subject}, thumbprint ${bundle.thumbprint})`,
    'create a new certificate, upload it to the app registration and store its PEM bundle',
  );
}

/** Messages of errors that are written to be shown; anything else only by its name. */
function describe(err: unknown): string[] {
  if (
    err instanceof ConfigError ||
    err instanceof BrokerError ||
    (err instanceof Error && err.name === 'Error')
  ) {
    return err.message
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }
  return [`failed (${err instanceof Error ? err.name : typeof err})`];
}

/**
 * `broker check`: verifies the app settings, the connections, and that the secret store is reachable
 * (list), writable and readable (writes `broker-check`, reads it back), and each connection's
 * credential: a client secret or certificate is in the store and not about to expire (a certificate
 * also parses, its key matching), a managed identity can get a token for the exchange audience now. One line per finding: `ok`, `warn` or
 * `FAIL`; exit code 1 when anything failed. Never prints a secret value.
 */
export async function runCheck(options: CheckOptions = {}): Promise<number> {
  const out = options.out ?? console.log;
  const now = options.now ?? Date.now;
  let failed = false;
  const ok = (what: string) => out(`ok    ${what}`);
  const warn = (what: string) => out(`warn  ${what}`);
  const fail = (what: string, err?: unknown) => {
    failed = true;
    if (err === undefined) out(`FAIL  ${what}`);
    else for (const line of describe(err)) out(`FAIL  ${what}: ${line}`);
  };

  let settings: Settings;
  try {
    settings = loadSettings(options.env ?? process.env);
  } catch (err) {
    fail('settings', err);
    return 1;
  }
  checkWhoMayAsk(settings, ok, warn);
  ok(
    `settings: store ${settings.keyVaultUrl ? `Key Vault ${settings.keyVaultUrl} (KEY_VAULT_URL)` : `embedded, in ${settings.dataDir} (BROKER_DATA_DIR)`}`,
  );

  let connections = new Map<string, Connection>();
  try {
    const loaded = loadConnections(settings, options.cwd);
    assertProvidersSupported(loaded.connections.values());
    connections = loaded.connections;
    if (connections.size === 0) warn(`connections: none configured (${loaded.source})`);
    else ok(`connections: ${connections.size} from ${loaded.source}`);
    if (settings.callerAuth.mode === 'entra') {
      for (const c of connections.values()) {
        if (!c.callers?.length)
          warn(`connection ${c.id}: no "callers" under CALLER_AUTH=entra, so no service may get its tokens`);
      }
    }
  } catch (err) {
    fail('connections', err);
  }

  let store: SecretStore;
  try {
    store = await (options.openStore ?? ((s: Settings) => openStore(s)))(settings);
  } catch (err) {
    fail('store', err);
    return 1;
  }

  let listed: SecretProperties[];
  try {
    listed = await store.listSecrets();
    ok(`store: reachable, ${listed.length} secret${listed.length === 1 ? '' : 's'} listed`);
  } catch (err) {
    fail('store: list', err);
    return 1;
  }

  try {
    const stamp = `checked at ${new Date(now()).toISOString()}`;
    const written = await store.setSecret(CHECK_SECRET, stamp, { tags: { purpose: 'broker check' } });
    const back = await store.getSecret(CHECK_SECRET);
    if (back?.value !== stamp) fail(`store: wrote ${CHECK_SECRET} but read back another value`);
    else ok(`store: writable (wrote and read back ${CHECK_SECRET}, version ${written.version})`);
  } catch (err) {
    fail('store: write', err);
  }

  const byName = new Map(listed.map((p) => [p.name.toLowerCase(), p]));
  const identities = new ManagedIdentityTokens({
    factory: options.managedIdentityCredential,
    clock: { now },
    timeoutMs: options.managedIdentityTimeoutMs ?? MANAGED_IDENTITY_TIMEOUT_MS,
  });
  const expiry = (what: string, expiresOn: Date, present: string, renew: string) => {
    const left = expiresOn.getTime() - now();
    const day = expiresOn.toISOString().slice(0, 10);
    if (left <= 0) fail(`${what} expired on ${day}: ${renew}`);
    else if (left <= WARN_BEFORE_MS)
      warn(`${what} expires on ${day} (in ${Math.ceil(left / DAY_MS)} days): ${renew}`);
    else ok(`${what} ${present}, expires on ${day}`);
  };
  for (const c of connections.values()) {
    const credential = c.credential;
    if (!credential) continue;
    if (credential.type === 'managedIdentity') {
      const authority = c.provider === 'entra' ? c.authority : 'https://login.microsoftonline.com';
      const audience = tokenExchangeAudience(authority);
      const identity = credential.clientId ?? 'AZURE_CLIENT_ID';
      const what = `connection ${c.id}: managed identity ${identity}`;
      try {
        await identities.probe(credential.clientId, audience);
        ok(`${what} can get a token for ${audience} now`);
      } catch (err) {
        fail(`${what} cannot get a token for ${audience}`, err);
      }
      continue;
    }
    const name = credential.secretName;
    const isCertificate = credential.type === 'certificate';
    const what = `connection ${c.id}: ${isCertificate ? 'certificate' : 'client secret'} ${name}`;
    const secret = byName.get(name.toLowerCase());
    if (!secret) {
      fail(`${what} is not in the store; add it with "broker secrets set ${name}"`);
      continue;
    }
    if (!secret.enabled) {
      fail(`${what} is disabled in the store`);
      continue;
    }
    if (isCertificate) {
      await checkCertificate(store, what, name, secret.expiresOn, { fail, expiry });
      continue;
    }
    if (!secret.expiresOn) {
      ok(`${what} present (no expiry date recorded)`);
      continue;
    }
    expiry(what, secret.expiresOn, 'present', 'create a new one and store it');
  }
  return failed ? 1 : 0;
}

/** docs/design.md, "Who may ask": the modes in force, and the settings that make one of them a trap. */
function checkWhoMayAsk(settings: Settings, ok: (what: string) => void, warn: (what: string) => void): void {
  const callers = settings.callerAuth;
  ok(
    callers.mode === 'entra'
      ? `callers: Entra tokens of tenant ${callers.tenantId} for ${callers.audiences.join(' or ')} (CALLER_AUTH=entra)`
      : 'callers: the function key (CALLER_AUTH=key)',
  );
  const admin = settings.adminAuth;
  if (admin.mode === 'key') ok('people: the function key (ADMIN_AUTH=key)');
  else if (!admin.platformEnabled)
    warn(
      'people: ADMIN_AUTH=easyauth but WEBSITE_AUTH_ENABLED is not True: App Service authentication is off, so nobody can sign in (turn it on, or use ADMIN_AUTH=key)',
    );
  else ok(`people: App Service sign-in with the app role ${admin.role} (ADMIN_AUTH=easyauth)`);
}

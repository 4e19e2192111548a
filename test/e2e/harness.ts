import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrokerOverrides } from '../../src/lib/broker.js';
import { ManualClock } from '../../src/lib/clock.js';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import type { KeyVaultSecretStoreOptions } from '../../src/lib/store/keyvault-store.js';
import type { SecretStore } from '../../src/lib/store/secret-store.js';
import { type LocalBroker, runLocal } from '../../src/local/run.js';
import { startEntraSimulator, type TestEntraSimulator } from '../fakes/entra.js';
import { type KeyVaultFake, startKeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import { lineLogger } from '../support/logs.js';
import { freePort } from '../support/net.js';

export const FUNCTION_KEY = 'e2e-function-key-0123456789abcdef';
export const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
export const CLIENT_SECRET_NAME = 'app-secret';
/** Other resources the e2e tests mint tokens for from one consent (mail protocols, made-up APIs). */
export const TEST_ALLOWED_SCOPES = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
  'https://a.example.com/x',
  'https://b.example.com/y',
];

export interface Stack {
  sim: TestEntraSimulator;
  simUrl: string;
  local: LocalBroker;
  url: string;
  clock: ManualClock;
  dataDir: string;
  clientSecret: string;
  /** The broker's environment (connections, data dir, key), e.g. for the CLI in a child process. */
  env: Record<string, string>;
  /** Every line the broker logged, in this process, since the stack started. */
  logs: string[];
  /** The Key Vault simulator, when the stack runs on the Key Vault store. */
  vault?: KeyVaultFake;
  api(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  /** Stops the broker only (the data dir and simulator stay), then starts it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A definition of an Entra connection (or template) on the stack's simulator with the test client:
 * what the admin API, the CLI and the status forms are given in the tests, with `scopes` and `more`.
 */
export function simulatorTemplate(
  stack: Pick<Stack, 'simUrl'>,
  scopes: string[],
  more: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    provider: 'entra',
    authority: stack.simUrl,
    tenant: 'organizations',
    clientId: CLIENT_ID,
    credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
    scopes,
    ...more,
  };
}

export interface StackOptions {
  /** Connections as in connections.json; `authority` defaults to the simulator (for `entra` ones). */
  connections?: Record<string, Record<string, unknown>>;
  /** App settings; a function gets the simulator's URL (for settings that point at it). */
  env?: Record<string, string> | ((simUrl: string) => Record<string, string>);
  /** The secret store: `file` (default) or `keyvault` (the simulator, `KEY_VAULT_URL` set); `BROKER_E2E_STORE` changes the default. */
  store?: 'file' | 'keyvault';
  /** Key Vault store timing for `store: 'keyvault'`. */
  keyVault?: KeyVaultSecretStoreOptions;
  /**
   * Ports and timings for the broker, passed whole to `runLocal` and `createBroker`: the dialects'
   * `fetch` (e.g. one that maps a public host to a fake), `providerTimeoutMs` (default here 2 s),
   * a `lock` shared with a second broker, the webhook's `alerts` timing, and so on. The stack sets
   * the store, clock and logger itself.
   */
  overrides?: Omit<BrokerOverrides, 'store' | 'clock' | 'logger'>;
}

/**
 * The broker's embedded host (real HTTP, real file store in a temp dir) in front of the Entra simulator
 * (real HTTP), with an injected clock and every log line captured for the leak scans.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const clientSecret = `client-secret-${Math.random().toString(36).slice(2)}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const clock = new ManualClock(Date.now());
  const {
    sim,
    url: simUrl,
    close: closeSim,
  } = await startEntraSimulator({
    now: () => clock.now(),
    clients: [{ clientId: CLIENT_ID, secret: clientSecret, redirectUris: [`${url}/api/callback`] }],
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'broker-e2e-'));
  const storeKind = options.store ?? (process.env.BROKER_E2E_STORE === 'keyvault' ? 'keyvault' : 'file');
  const vault =
    storeKind === 'keyvault' ? await startKeyVaultSimulator({ now: () => clock.now() }) : undefined;
  const store: SecretStore = vault
    ? await vault.createStore({
        attemptTimeoutMs: 1000,
        deadlineMs: 3000,
        retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 200 },
        ...options.keyVault,
      })
    : await FileSecretStore.open(dataDir);
  await store.setSecret(CLIENT_SECRET_NAME, clientSecret);
  const connections = options.connections ?? { support: {} };
  const resolved: Record<string, Record<string, unknown>> = {};
  for (const [id, c] of Object.entries(connections)) {
    // Another provider takes the app and its secret from here, nothing that belongs to Entra.
    if (c.provider !== undefined && c.provider !== 'entra') {
      resolved[id] = {
        clientId: CLIENT_ID,
        credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
        ...c,
      };
      continue;
    }
    resolved[id] = {
      provider: 'entra',
      authority: simUrl,
      tenant: 'organizations',
      clientId: CLIENT_ID,
      credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
      scopes: ['https://graph.microsoft.com/User.Read', 'https://graph.microsoft.com/Mail.Read'],
      // What the tests mint besides the connection's own scopes (DESIGN.md, `allowedScopes`).
      allowedScopes: TEST_ALLOWED_SCOPES,
      ...c,
    };
  }
  const { logger, lines: logs } = lineLogger();
  const env = {
    BROKER_CONNECTIONS: JSON.stringify({ connections: resolved }),
    BROKER_DATA_DIR: dataDir,
    BROKER_PUBLIC_URL: url,
    BROKER_FUNCTION_KEY: FUNCTION_KEY,
    PORT: String(port),
    ...(vault ? { KEY_VAULT_URL: vault.url } : {}),
    ...(typeof options.env === 'function' ? options.env(simUrl) : options.env),
  };
  const launch = () =>
    runLocal({
      env,
      timers: false,
      overrides: { providerTimeoutMs: 2000, ...options.overrides, store, clock, logger },
    });
  let local = await launch();
  const stack: Stack = {
    sim,
    simUrl,
    get local() {
      return local;
    },
    url,
    clock,
    dataDir,
    clientSecret,
    env,
    logs,
    vault,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.key !== null) headers.set('x-functions-key', init.key ?? FUNCTION_KEY);
      return fetch(`${url}${path}`, { ...init, headers, redirect: 'manual' });
    },
    async restart() {
      await local.close();
      // Let pooled keep-alive sockets of the test's fetch see the close before the next request.
      await new Promise((resolve) => setTimeout(resolve, 50));
      local = await launch();
    },
    async close() {
      await local.close();
      await closeSim();
      await vault?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * Every secret the simulator issued or the test set (and `more`, from other fakes) must be absent
 * from the logs and, in plain text, from every file of the data dir. Returns the leaks found (empty = none).
 */
export async function findLeaks(stack: Stack, more: readonly string[] = []): Promise<string[]> {
  const secrets = [...stack.sim.issuedSecrets(), stack.clientSecret, ...more].filter((s) => s.length >= 8);
  const haystacks: Array<[string, string]> = [['logs', stack.logs.join('\n')]];
  for (const file of await listFiles(stack.dataDir))
    haystacks.push([file, (await readFile(file)).toString('latin1')]);
  const leaks: string[] = [];
  for (const secret of secrets) {
    for (const [where, text] of haystacks)
      if (text.includes(secret)) leaks.push(`${where} holds ${secret.slice(0, 6)}…`);
  }
  return leaks;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else out.push(path);
  }
  return out;
}

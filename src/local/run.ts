import { routeTable } from '../functions/routes.js';
import { type Broker, type BrokerOptions, createBroker } from '../lib/broker.js';
import type { Clock } from '../lib/clock.js';
import { loadConnections } from '../lib/config/load.js';
import { loadSettings } from '../lib/config/settings.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { once } from '../lib/once.js';
import { openStore } from '../lib/store/open-store.js';
import type { SecretStore } from '../lib/store/secret-store.js';
import { openTelemetry } from '../lib/telemetry/open.js';
import { resolveFunctionKey } from './function-key.js';
import { stdioSink } from './log-sink.js';
import type { EntraSimulator } from './sandbox/entra-simulator.js';
import { createSandbox } from './sandbox/sandbox.js';
import { startLocalHost } from './server.js';
import { startTimers } from './timers.js';

export interface LocalBroker {
  url: string;
  functionKey: string;
  broker: Broker;
  /** Set when no connections are configured and the sandbox is served. */
  sandbox?: EntraSimulator;
  close(): Promise<void>;
}

export interface RunLocalOptions {
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  clock?: Clock;
  logger?: Logger;
  store?: SecretStore;
  fetch?: typeof fetch;
  providerTimeoutMs?: number;
  providerMaxRetries?: number;
  /** See `BrokerOptions.callerKeysCooldownMs`. */
  callerKeysCooldownMs?: number;
  /** Tests: the refresh lock (e.g. one shared by two brokers) and the webhook sender's timing. */
  lock?: BrokerOptions['lock'];
  alerts?: BrokerOptions['alerts'];
  /** See `BrokerOptions.managedIdentityCredential` / `managedIdentityTimeoutMs`. */
  managedIdentityCredential?: BrokerOptions['managedIdentityCredential'];
  managedIdentityTimeoutMs?: number;
  /** Start the rotation timer (default true). */
  timers?: boolean;
  /** Lines for a person (URL, key source, sandbox hints); default: none. */
  print?: (line: string) => void;
}

/** The embedded host: the same route table as Azure, served by node:http, for `npm start` and e2e tests. */
export async function runLocal(options: RunLocalOptions = {}): Promise<LocalBroker> {
  const settings = loadSettings(options.env ?? process.env);
  const loaded = loadConnections(settings, options.cwd);
  const store = options.store ?? (await openStore(settings));
  const { key, source: keySource } = await resolveFunctionKey(settings.functionKey, settings.dataDir);
  // One logger for the host and the broker; by default its lines leave in batches, off the request path.
  const stdio = options.logger ? undefined : stdioSink();
  const logger = options.logger ?? createLogger(stdio!.sink);

  let sandbox: EntraSimulator | undefined;
  let brokerPromise: Promise<Broker> | undefined;
  const brokerSource = once(() => brokerPromise ?? Promise.reject(new Error('broker not started')));
  const table = routeTable(brokerSource, settings);
  const host = await startLocalHost({
    routes: table.http,
    functionKey: key,
    port: settings.port,
    logger,
    fallback: (req, res) => sandbox?.handle(req, res) ?? false,
  });
  // With PORT=0 the port is known only now; the default public URL follows it.
  if (settings.port === 0 && !(options.env ?? process.env).BROKER_PUBLIC_URL) {
    settings.publicUrl = `http://localhost:${host.port}`;
  }

  const connections = loaded.connections;
  if (connections.size === 0 && store.kind === 'file') {
    const created = await createSandbox(store, settings.publicUrl, host.port, settings.dataDir);
    connections.set(created.connection.id, created.connection);
    sandbox = created.simulator;
  }
  brokerPromise = createBroker({
    settings,
    connections,
    store,
    clock: options.clock,
    logger,
    fetch: options.fetch,
    providerTimeoutMs: options.providerTimeoutMs,
    providerMaxRetries: options.providerMaxRetries,
    callerKeysCooldownMs: options.callerKeysCooldownMs,
    lock: options.lock,
    alerts: options.alerts,
    managedIdentityCredential: options.managedIdentityCredential,
    managedIdentityTimeoutMs: options.managedIdentityTimeoutMs,
    telemetry: openTelemetry(options.env ?? process.env),
  });
  let broker: Broker;
  try {
    broker = await brokerPromise;
  } catch (err) {
    await host.close();
    stdio?.close();
    throw err;
  }
  const timers = options.timers === false ? undefined : startTimers(table.timers, { logger: broker.logger });

  const print = (line: string) => {
    // What a person reads follows the log lines logged before it.
    stdio?.flush();
    options.print?.(line);
  };
  const base = settings.publicUrl;
  print(
    `Token broker listening on ${base} (store: ${broker.store.kind}${broker.store.kind === 'file' ? ` in ${settings.dataDir}` : ''})`,
  );
  print(`Function key from ${keySource}: ${key}`);
  print(
    `Connections: ${[...connections.keys()].join(', ') || 'none'} (from ${sandbox ? 'the built-in sandbox' : loaded.source})`,
  );
  print(`Status page: ${base}/api/status?code=${key}`);
  if (sandbox) {
    print(
      'No connections are configured, so the "sandbox" connection signs in against a built-in simulator.',
    );
    print('Open the status page, click Connect, sign in, then:');
    print(`  curl -H "x-functions-key: ${key}" "${base}/api/token?connection=sandbox"`);
  }

  return {
    url: base,
    functionKey: key,
    broker,
    sandbox,
    async close() {
      await timers?.stop();
      await host.close();
      // What telemetry still holds leaves now (bounded by the exporters' timeout).
      await broker.telemetry.shutdown();
      stdio?.close();
    },
  };
}

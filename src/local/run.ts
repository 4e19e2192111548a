import { routeTable } from '../functions/routes.js';
import { type Broker, type BrokerOverrides, createBroker } from '../lib/broker.js';
import { loadConnections } from '../lib/config/load.js';
import { loadSettings } from '../lib/config/settings.js';
import { createLogger } from '../lib/logger.js';
import { once } from '../lib/once.js';
import { openStore } from '../lib/store/open-store.js';
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
  /** Ports and timings in place of the defaults (tests), handed to `createBroker` whole. */
  overrides?: BrokerOverrides;
  /** Start the rotation timer (default true). */
  timers?: boolean;
  /** Lines for a person (URL, key source, sandbox hints); default: none. */
  print?: (line: string) => void;
}

/** The embedded host: the same route table as Azure, served by node:http, for `npm start` and e2e tests. */
export async function runLocal(options: RunLocalOptions = {}): Promise<LocalBroker> {
  const settings = loadSettings(options.env ?? process.env);
  const loaded = loadConnections(settings, options.cwd);
  const overrides = options.overrides ?? {};
  const store = overrides.store ?? (await openStore(settings));
  const { key, source: keySource } = await resolveFunctionKey(settings.functionKey, settings.dataDir);
  // One logger for the host and the broker; by default its lines leave in batches, off the request path.
  const stdio = overrides.logger ? undefined : stdioSink();
  const logger = overrides.logger ?? createLogger(stdio!.sink);

  let sandbox: EntraSimulator | undefined;
  let brokerPromise: Promise<Broker> | undefined;
  const brokerSource = once(() => brokerPromise ?? Promise.reject(new Error('broker not started')));
  const table = routeTable(brokerSource, settings);
  const host = await startLocalHost({
    routes: table.http,
    functionKey: key,
    port: settings.port,
    // Its own names: loopback, and the one people and callers use (BROKER_PUBLIC_URL, or the default).
    hostNames: [new URL(settings.publicUrl).host],
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
    connections.set(created.appOnly.id, created.appOnly);
    sandbox = created.simulator;
  }
  brokerPromise = createBroker({
    ...overrides,
    settings,
    connections,
    declaredDefinitions: sandbox ? undefined : loaded.definitions,
    declaredTemplates: loaded.templates,
    store,
    logger,
    telemetry: overrides.telemetry ?? openTelemetry(options.env ?? process.env),
  });
  let broker: Broker;
  try {
    broker = await brokerPromise;
  } catch (err) {
    await host.close();
    stdio?.close();
    throw err;
  }
  if (settings.adminAuth.mode === 'easyauth' && settings.adminAuth.platformEnabled) {
    // Outside App Service nothing strips a client's own X-MS-CLIENT-PRINCIPAL: whoever reaches this
    // host can claim to be any signed-in admin. Fine for a test; said loudly, since it is not for use.
    logger.warn('local_host.trusts_principal_header', {
      message:
        'WEBSITE_AUTH_ENABLED=True is set by hand: this host believes any X-MS-CLIENT-PRINCIPAL header a client sends. Only for testing; never expose this host.',
    });
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
    print(
      'The app-only "sandbox-app" needs no sign-in (docs/app-only.md): an XOAUTH2 string for its mailbox:',
    );
    print(
      `  curl -H "x-functions-key: ${key}" "${base}/api/token?connection=sandbox-app&format=xoauth2&user=desk@contoso.com"`,
    );
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

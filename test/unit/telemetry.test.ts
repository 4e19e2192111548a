import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionCatalog } from '../../src/lib/config/catalog.js';
import { BrokerError } from '../../src/lib/errors.js';
import { entraCredential } from '../../src/lib/telemetry/azure-monitor.js';
import { EXPORT_FAILURE_LOG_INTERVAL_MS, guardExports } from '../../src/lib/telemetry/export-guard.js';
import { refreshOutcome } from '../../src/lib/telemetry/instruments.js';
import { openTelemetry } from '../../src/lib/telemetry/open.js';
import { parseHeaders } from '../../src/lib/telemetry/otlp.js';
import { noTelemetry } from '../../src/lib/telemetry/telemetry.js';
import { testTls } from '../fakes/tls.js';
import { lineLogger } from '../support/logs.js';
import { childEnv, ROOT } from '../support/process.js';

const execFileAsync = promisify(execFile);
const deps = () => ({ logger: lineLogger().logger, catalog: new ConnectionCatalog([]), now: Date.now });

describe('openTelemetry', () => {
  it('is the no-op without an exporter setting: every port is returned as it is', async () => {
    const telemetry = await openTelemetry({ OTEL_SERVICE_NAME: 'x', OTEL_METRIC_EXPORT_INTERVAL: '1000' })(
      deps(),
    );
    expect(telemetry).toBe(noTelemetry);
    const fetch = globalThis.fetch;
    expect(telemetry.fetch(fetch)).toBe(fetch);
    expect(await telemetry.vend('a', async () => ({ served: 'cache' as const }))).toEqual({
      served: 'cache',
    });
  });

  it('leaves the broker without telemetry, not without tokens, when an exporter cannot start', async () => {
    const { logger, events } = lineLogger();
    const telemetry = await openTelemetry({
      APPLICATIONINSIGHTS_CONNECTION_STRING: 'not a connection string',
    })({
      ...deps(),
      logger,
    });
    expect(telemetry).toBe(noTelemetry);
    expect(events('telemetry.unavailable')).toHaveLength(1);
  });
});

describe('Application Insights (Azure Monitor exporters)', () => {
  const bodies: { path: string; body: string }[] = [];
  const tls = testTls();
  const server = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      bodies.push({ path: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ itemsReceived: 1, itemsAccepted: 1, errors: [] }));
    });
  });
  let caFile: string;
  beforeAll(async () => {
    caFile = join(await mkdtemp(join(tmpdir(), 'broker-otel-')), 'ca.pem');
    await writeFile(caFile, tls.ca);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the contract metrics and spans to the ingestion endpoint of the connection string', async () => {
    const port = (server.address() as AddressInfo).port;
    // Not spawnSync: the ingestion endpoint answers from this process's event loop.
    const run = await execFileAsync(
      process.execPath,
      ['--import', 'tsx', 'test/support/azure-monitor-probe.ts'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: childEnv({
          NODE_EXTRA_CA_CERTS: caFile,
          APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-4000-8000-000000000001;IngestionEndpoint=https://127.0.0.1:${port}/`,
          OTEL_METRIC_EXPORT_INTERVAL: '600000',
        }),
      },
    );
    const out = JSON.parse(run.stdout) as { enabled: boolean; lines: string[] };
    expect(out).toEqual({ enabled: true, lines: [] });
    const sent = bodies.map((b) => b.body).join('\n');
    expect(bodies.every((b) => b.path.startsWith('/v2.1/track'))).toBe(true);
    expect(sent).toContain('broker.token.requests');
    expect(sent).toContain('broker.token.duration');
    expect(sent).toContain('GET token');
  }, 60_000);

  it('publishes with the managed identity APPLICATIONINSIGHTS_AUTHENTICATION_STRING names', async () => {
    expect(await entraCredential(undefined)).toBeUndefined();
    expect(await entraCredential('Authorization=Key')).toBeUndefined();
    const credential = await entraCredential(
      'Authorization=AAD;ClientId=c01d57a2-0000-4000-8000-0000000000a1',
    );
    expect(credential?.constructor.name).toBe('ManagedIdentityCredential');
  });
});

describe('what a refresh failure means', () => {
  it('classifies by problem code: dead grant, refused client or request, transient', () => {
    expect(refreshOutcome(new BrokerError('consent_required', 'x'))).toBe('dead');
    expect(refreshOutcome(new BrokerError('client_misconfigured', 'x'))).toBe('client');
    expect(refreshOutcome(new BrokerError('invalid_request', 'x'))).toBe('client');
    expect(refreshOutcome(new BrokerError('upstream_unavailable', 'x'))).toBe('transient');
    expect(refreshOutcome(new TypeError('fetch failed'))).toBe('transient');
  });
});

describe('export failures', () => {
  it('are logged once a minute at most, with how many failed since', () => {
    const { logger, events } = lineLogger();
    let now = 0;
    const results: number[] = [];
    const failing = {
      export: (_items: string[], done: (r: { code: number; error?: Error }) => void) =>
        done({ code: 1, error: new Error('ECONNREFUSED') }),
    };
    const guarded = guardExports(failing, 'metrics', logger, () => now);
    for (let i = 0; i < 5; i++) guarded.export(['m'], (r) => results.push(r.code));
    now += EXPORT_FAILURE_LOG_INTERVAL_MS - 1;
    guarded.export(['m'], (r) => results.push(r.code));
    expect(events('telemetry.export_failed')).toHaveLength(1);
    now += 1;
    guarded.export(['m'], (r) => results.push(r.code));
    expect(events('telemetry.export_failed').map((l) => l.failed)).toEqual([1, 6]);
    expect(results).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it('never throw into the SDK: an exporter that throws reports a failed export', () => {
    const throwing = {
      export: (_items: string[], _done: (r: { code: number }) => void): void => {
        throw new Error('boom');
      },
    };
    const codes: number[] = [];
    guardExports(throwing, 'traces', lineLogger().logger).export([], (r) => codes.push(r.code));
    expect(codes).toEqual([1]);
  });
});

describe('OTEL_EXPORTER_OTLP_HEADERS', () => {
  it('reads comma-separated key=value pairs, URL-decoded', () => {
    expect(parseHeaders('api-key=a%20b, x-tenant = t1,broken')).toEqual({
      'api-key': 'a b',
      'x-tenant': 't1',
    });
    expect(parseHeaders(undefined)).toEqual({});
  });
});

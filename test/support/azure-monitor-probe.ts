// Child process of test/unit/telemetry.test.ts: the broker's telemetry with
// APPLICATIONINSIGHTS_CONNECTION_STRING from the environment, one request with one vend, then flushed.
// (Azure Monitor's exporters speak HTTPS only; the test's CA reaches them through NODE_EXTRA_CA_CERTS,
// which Node reads at start, hence a process of its own.)
import { ConnectionCatalog } from '../../src/lib/config/catalog.js';
import { openTelemetry } from '../../src/lib/telemetry/open.js';
import { lineLogger } from './logs.js';

const { logger, lines } = lineLogger();
const telemetry = await openTelemetry(process.env)({
  logger,
  catalog: new ConnectionCatalog([]),
  now: Date.now,
});
await telemetry.request({ method: 'GET', route: 'token' }, async () => {
  await telemetry.vend('support', async () => ({ served: 'refresh' as const }));
  return { status: 200 };
});
await telemetry.flush();
await telemetry.shutdown();
process.stdout.write(JSON.stringify({ enabled: telemetry.enabled, lines }));

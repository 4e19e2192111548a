import { metrics, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SERVICE_NAME, type TelemetryDeps, type TelemetryEnv } from './env.js';
import { instrument } from './instruments.js';
import type { Telemetry } from './telemetry.js';

/**
 * Application Insights through Azure Monitor's OpenTelemetry distro (`APPLICATIONINSIGHTS_CONNECTION_STRING`),
 * as the Azure Functions OpenTelemetry samples set it up. The distro registers the process-wide
 * providers and reads the standard `OTEL_*` settings itself; only the broker's own spans and metrics
 * are wanted, so its automatic instrumentations stay off (the Functions host, in OpenTelemetry mode,
 * already reports each invocation).
 */
export async function openAzureMonitor(env: TelemetryEnv, deps: TelemetryDeps): Promise<Telemetry> {
  const { useAzureMonitor, shutdownAzureMonitor } = await import('@azure/monitor-opentelemetry');
  const off = { enabled: false };
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString: env.APPLICATIONINSIGHTS_CONNECTION_STRING },
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || SERVICE_NAME }),
    enableLiveMetrics: false,
    instrumentationOptions: {
      azureSdk: off,
      http: off,
      mongoDb: off,
      mySql: off,
      postgreSql: off,
      redis: off,
      bunyan: off,
      winston: off,
    },
  });
  return instrument({
    tracer: trace.getTracer(SERVICE_NAME),
    meter: metrics.getMeter(SERVICE_NAME),
    catalog: deps.catalog,
    now: deps.now,
    flush: async () => {
      const provider = metrics.getMeterProvider() as { forceFlush?: () => Promise<void> };
      await provider.forceFlush?.().catch(() => undefined);
    },
    shutdown: () => shutdownAzureMonitor().catch(() => undefined),
  });
}

import type { TokenCredential } from '@azure/identity';
import { EXPORT_TIMEOUT_MS, type TelemetryDeps, type TelemetryEnv } from './env.js';
import { startSdk } from './sdk.js';
import type { Telemetry } from './telemetry.js';

/**
 * Application Insights (`APPLICATIONINSIGHTS_CONNECTION_STRING`) through Azure Monitor's OpenTelemetry
 * exporters, as the Azure Functions OpenTelemetry guide sets them up for Node: the same SDK, spans and
 * metrics as OTLP, only the exporters differ. (The all-in-one `@azure/monitor-opentelemetry` distro
 * adds automatic instrumentations the broker does not want, and would triple the deployment package.)
 * The Functions host, in OpenTelemetry mode (host.json), reports each invocation itself.
 */
/**
 * `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` (`Authorization=AAD;ClientId=…`, what the Bicep sets:
 * the resource refuses keys) → the managed identity that may publish; unset → the connection string's key.
 */
export async function entraCredential(value: string | undefined): Promise<TokenCredential | undefined> {
  const fields = new Map(
    (value ?? '').split(';').map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at).trim().toLowerCase(), pair.slice(at + 1).trim()] as const;
    }),
  );
  if (fields.get('authorization')?.toUpperCase() !== 'AAD') return undefined;
  const { ManagedIdentityCredential } = await import('@azure/identity');
  const clientId = fields.get('clientid');
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

export async function openAzureMonitor(env: TelemetryEnv, deps: TelemetryDeps): Promise<Telemetry> {
  const { AzureMonitorMetricExporter, AzureMonitorTraceExporter } = await import(
    '@azure/monitor-opentelemetry-exporter'
  );
  const options = {
    connectionString: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
    credential: await entraCredential(env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING),
  };
  const exporters = {
    spans: new AzureMonitorTraceExporter(options),
    metrics: new AzureMonitorMetricExporter(options),
  };
  return startSdk(env, deps, exporters, EXPORT_TIMEOUT_MS);
}

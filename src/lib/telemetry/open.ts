import type { TelemetryDeps, TelemetryEnv } from './env.js';
import { noTelemetry, type Telemetry } from './telemetry.js';

/** Builds the telemetry once the catalog and logger exist (the composition root calls it). */
export type TelemetryFactory = (deps: TelemetryDeps) => Promise<Telemetry>;

/**
 * The telemetry the settings ask for (docs/telemetry.md): `APPLICATIONINSIGHTS_CONNECTION_STRING` →
 * Azure Monitor's distro, else `OTEL_EXPORTER_OTLP_ENDPOINT` (or a signal's own endpoint) → OTLP over
 * HTTP, else none. The exporters are imported here, on demand: with neither set, not one line of
 * OpenTelemetry is loaded and a cold start pays nothing for it. An exporter that cannot start is
 * logged and leaves the broker without telemetry, never without tokens.
 */
export function openTelemetry(env: TelemetryEnv = process.env): TelemetryFactory {
  return async (deps) => {
    const otlp =
      env.OTEL_EXPORTER_OTLP_ENDPOINT ||
      env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
      env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
    try {
      if (env.APPLICATIONINSIGHTS_CONNECTION_STRING) {
        return await (await import('./azure-monitor.js')).openAzureMonitor(env, deps);
      }
      if (otlp) return await (await import('./otlp.js')).openOtlp(env, deps);
    } catch (err) {
      deps.logger.warn('telemetry.unavailable', { error: err instanceof Error ? err.message : String(err) });
    }
    return noTelemetry;
  };
}

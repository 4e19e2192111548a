import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { EXPORT_TIMEOUT_MS, numberSetting, type TelemetryDeps, type TelemetryEnv } from './env.js';
import { startSdk } from './sdk.js';
import type { Telemetry } from './telemetry.js';

/** `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs, comma-separated, values URL-encoded (the OTLP spec). */
export function parseHeaders(value: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

/** The signal's URL: its own `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT` as is, else the base plus `/v1/{signal}`. */
function signalUrl(env: TelemetryEnv, signal: 'traces' | 'metrics'): string {
  const own = env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`];
  if (own) return own;
  return `${(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').replace(/\/+$/, '')}/v1/${signal}`;
}

/**
 * OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`: protobuf, or JSON with
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`. Metrics every `OTEL_METRIC_EXPORT_INTERVAL` ms (60 s),
 * spans in batches every `OTEL_BSP_SCHEDULE_DELAY` ms (5 s), both in the background.
 */
/**
 * OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (any collector, Aspire's dashboard, Grafana,
 * Honeycomb…): protobuf, or JSON with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`; headers from
 * `OTEL_EXPORTER_OTLP_HEADERS`, timeout from `OTEL_EXPORTER_OTLP_TIMEOUT`. Only the protocol's exporters are loaded.
 */
export async function openOtlp(env: TelemetryEnv, deps: TelemetryDeps): Promise<Telemetry> {
  const json = env.OTEL_EXPORTER_OTLP_PROTOCOL === 'http/json';
  const [traceModule, metricModule] = await Promise.all(
    json
      ? [
          import('@opentelemetry/exporter-trace-otlp-http'),
          import('@opentelemetry/exporter-metrics-otlp-http'),
        ]
      : [
          import('@opentelemetry/exporter-trace-otlp-proto'),
          import('@opentelemetry/exporter-metrics-otlp-proto'),
        ],
  );
  const headers = parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS);
  const timeoutMillis = numberSetting(env.OTEL_EXPORTER_OTLP_TIMEOUT, EXPORT_TIMEOUT_MS);
  const exporters = {
    spans: new traceModule.OTLPTraceExporter({
      url: signalUrl(env, 'traces'),
      headers,
      timeoutMillis,
    }) as SpanExporter,
    metrics: new metricModule.OTLPMetricExporter({
      url: signalUrl(env, 'metrics'),
      headers,
      timeoutMillis,
    }) as PushMetricExporter,
  };
  return startSdk(env, deps, exporters, timeoutMillis);
}

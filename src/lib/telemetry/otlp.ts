import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { numberSetting, SERVICE_NAME, type TelemetryDeps, type TelemetryEnv } from './env.js';
import { guardExports } from './export-guard.js';
import { instrument } from './instruments.js';
import type { Telemetry } from './telemetry.js';

/** How long one export may take before it is abandoned (the SDK's default is 10 s). */
const EXPORT_TIMEOUT_MS = 5_000;

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
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || SERVICE_NAME });
  const { logger } = deps;

  const spanExporter = new traceModule.OTLPTraceExporter({
    url: signalUrl(env, 'traces'),
    headers,
    timeoutMillis,
  });
  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(guardExports(spanExporter as SpanExporter, 'traces', logger), {
        scheduledDelayMillis: numberSetting(env.OTEL_BSP_SCHEDULE_DELAY, 5_000),
        exportTimeoutMillis: timeoutMillis,
        // A collector that is down costs at most this many spans of memory; the rest are dropped.
        maxQueueSize: 2048,
      }),
    ],
  });
  const metricExporter = new metricModule.OTLPMetricExporter({
    url: signalUrl(env, 'metrics'),
    headers,
    timeoutMillis,
  });
  const interval = numberSetting(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: guardExports(metricExporter as PushMetricExporter, 'metrics', logger),
        exportIntervalMillis: interval,
        exportTimeoutMillis: Math.min(timeoutMillis, interval),
      }),
    ],
  });
  // Spans find their parent through the async context; one manager serves every broker of the process.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return instrument({
    tracer: tracerProvider.getTracer('m365-token-broker'),
    meter: meterProvider.getMeter('m365-token-broker'),
    catalog: deps.catalog,
    now: deps.now,
    flush: async () => {
      await Promise.allSettled([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
    },
    shutdown: async () => {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  });
}

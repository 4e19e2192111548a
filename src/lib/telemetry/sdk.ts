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

/** Where spans and metrics go: one exporter each (OTLP or Azure Monitor). */
export interface Exporters {
  spans: SpanExporter;
  metrics: PushMetricExporter;
}

/** Spans kept while a collector is down; beyond this they are dropped, not queued without bound. */
const MAX_QUEUED_SPANS = 2048;

/**
 * The OpenTelemetry SDK around two exporters: metrics every `OTEL_METRIC_EXPORT_INTERVAL` ms (60 s),
 * spans in batches every `OTEL_BSP_SCHEDULE_DELAY` ms (5 s), both in the background, each export
 * abandoned after `timeoutMillis`, failures logged once a minute at most; the service named by
 * `OTEL_SERVICE_NAME`. A request only ever records into memory.
 */
export function startSdk(
  env: TelemetryEnv,
  deps: TelemetryDeps,
  exporters: Exporters,
  timeoutMillis: number,
): Telemetry {
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || SERVICE_NAME });
  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(guardExports(exporters.spans, 'traces', deps.logger), {
        scheduledDelayMillis: numberSetting(env.OTEL_BSP_SCHEDULE_DELAY, 5_000),
        exportTimeoutMillis: timeoutMillis,
        maxQueueSize: MAX_QUEUED_SPANS,
      }),
    ],
  });
  const interval = numberSetting(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000);
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: guardExports(exporters.metrics, 'metrics', deps.logger),
        exportIntervalMillis: interval,
        exportTimeoutMillis: Math.min(timeoutMillis, interval),
      }),
    ],
  });
  // Spans find their parent through the async context; one manager serves every broker of the process
  // (a second registration is refused by the API and changes nothing).
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return instrument({
    tracer: tracerProvider.getTracer(SERVICE_NAME),
    meter: meterProvider.getMeter(SERVICE_NAME),
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

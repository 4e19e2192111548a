import type { HttpHandler } from '@azure/functions';
import type { Telemetry } from '../lib/telemetry/telemetry.js';

/**
 * An HTTP handler inside its server span (docs/telemetry.md). The parent is the Functions host's own
 * span when it passes one (`telemetryMode: OpenTelemetry`), else the caller's `traceparent` header
 * (the embedded host). Without telemetry configured the handler runs as it is.
 */
export function traced(source: () => Promise<{ telemetry: Telemetry }>, handler: HttpHandler): HttpHandler {
  return async (request, context) => {
    // A broker that fails to start is the handler's to report (it asks `source` again: built once, a
    // failed build is retried, so a broker that cannot start is tried twice per request).
    const telemetry = await source().then(
      (broker) => broker.telemetry,
      () => undefined,
    );
    if (!telemetry?.enabled) return handler(request, context);
    const host = context.traceContext?.traceParent;
    return telemetry.request(
      {
        method: request.method,
        route: context.functionName,
        traceparent: host ?? request.headers.get('traceparent'),
        tracestate: host ? context.traceContext?.traceState : request.headers.get('tracestate'),
      },
      async () => handler(request, context),
    );
  };
}

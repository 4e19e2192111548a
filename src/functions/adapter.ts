import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { Broker } from '../lib/broker.js';
import { problemResponse } from '../lib/http/problem.js';

/** How adapters reach the services: built once per process, on first use. */
export type BrokerSource = () => Promise<Broker>;

/**
 * The shape every HTTP adapter shares: get the broker, run, and turn a thrown error into
 * problem+json (or whatever `onError` renders, e.g. an HTML page for browsers).
 */
export function adapter(
  source: BrokerSource,
  run: (broker: Broker, request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>,
  onError?: (err: unknown, broker: Broker, request: HttpRequest) => HttpResponseInit | undefined,
): HttpHandler {
  return async (request, context) => {
    let broker: Broker;
    try {
      broker = await source();
    } catch (err) {
      context.error(`broker failed to start: ${err instanceof Error ? err.message : String(err)}`);
      return problemResponse(err, '');
    }
    try {
      return await run(broker, request, context);
    } catch (err) {
      return (
        onError?.(err, broker, request) ?? problemResponse(err, broker.settings.publicUrl, broker.logger)
      );
    }
  };
}

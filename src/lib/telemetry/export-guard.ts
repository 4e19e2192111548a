import type { Logger } from '../logger.js';

/** How often a failing collector is mentioned in the log at most (docs/telemetry.md). */
export const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** The part of an OpenTelemetry exporter the guard sees: `export(items, done)` with a result code. */
interface Exporter<T> {
  export(items: T, done: (result: { code: number; error?: Error }) => void): void;
}

/**
 * An exporter whose failures (collector down, slow, refusing) reach the log at most once a minute,
 * with how many failed since; nothing else changes. Exports already run in the background with
 * the SDK's own timeout and bounded queue, so a request never waits for one.
 */
export function guardExports<E extends Exporter<T>, T>(
  exporter: E,
  signal: 'metrics' | 'traces',
  logger: Logger,
  now: () => number = Date.now,
): E {
  let lastLogged = Number.NEGATIVE_INFINITY;
  let failed = 0;
  const exportGuarded: Exporter<T>['export'] = (items, done) => {
    try {
      exporter.export(items, (result) => {
        if (result.code !== 0) {
          failed++;
          if (now() - lastLogged >= EXPORT_FAILURE_LOG_INTERVAL_MS) {
            lastLogged = now();
            // The error's message says what failed (refused, timeout, status); it holds no telemetry.
            logger.warn('telemetry.export_failed', { signal, failed, error: result.error?.message });
            failed = 0;
          }
        }
        done(result);
      });
    } catch (err) {
      done({ code: 1, error: err instanceof Error ? err : new Error(String(err)) });
    }
  };
  return new Proxy(exporter, {
    get(target, prop) {
      if (prop === 'export') return exportGuarded;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

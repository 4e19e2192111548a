import type { Logger } from '../logger.js';

/** The process environment, or what a test passes instead: the standard `OTEL_*` names. */
export type TelemetryEnv = Record<string, string | undefined>;

/** What an implementation is built with, by the composition root. */
export interface TelemetryDeps {
  /** Where a failing collector is mentioned (once a minute at most). */
  logger: Logger;
  /** The catalog: only ids it knows become attribute values (bounded cardinality; a caller's typo is not). */
  catalog: { peek(id: string): unknown };
  /** The broker's clock (epoch ms), for the days left until a deadline. */
  now: () => number;
}

/** Default `service.name` of the resource (`OTEL_SERVICE_NAME` overrides it). */
export const SERVICE_NAME = 'm365-token-broker';

/** How long one export may take before it is abandoned (the SDK's default is 10 s). */
export const EXPORT_TIMEOUT_MS = 5_000;

/** A positive number of milliseconds from an `OTEL_*` setting, else the default. */
export function numberSetting(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isFinite(n) && n > 0 ? n : fallback;
}

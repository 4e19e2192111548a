/** `Retry-After` (seconds) handed to callers of a transient failure when the upstream named none. */
export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * RFC 9110 §10.2.3 `Retry-After`: delay-seconds or an HTTP date (measured against `now`, epoch ms),
 * as whole seconds; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  // An HTTP date always names a weekday or month; Date.parse alone would read "-5" as a year.
  const date = /[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.js';
import { BrokerError, type ProviderErrorInfo } from '../errors.js';
import type { Logger } from '../logger.js';
import { DEFAULT_RETRY_AFTER_S, parseRetryAfter } from '../retry-after.js';
import { providerErrorOf } from './classify.js';
import { parseJson } from './json.js';
import type { OAuthRequest } from './request.js';
import { parseOAuthError } from './response.js';
import type { ProviderResponse } from './types.js';

/**
 * `send`, the one way dialects call a provider: a per-attempt timeout, a few retries with backoff on
 * throttling, outages and unreachable hosts, and a final `upstream_unavailable` that reaches the
 * caller within seconds. Requests carry codes, tokens and secrets, so nothing here ever puts a
 * request parameter, a URL query or a response body into an error or a log line.
 */

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_RETRIES = 2;
/** The longest `Retry-After` waited out here; a longer one goes straight back to the caller. */
export const MAX_RETRY_AFTER_S = 5;
/** Cap on all waiting between attempts of one call, so callers hear back in seconds, not minutes. */
const MAX_TOTAL_WAIT_MS = 6_000;
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 2_000;

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

// The connection was never established, so the provider cannot have seen the request.
const UNREACHED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);
// The connection broke while in use: the request may or may not have reached the provider.
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** What `send` needs. `fetch` is injectable so tests reach simulators over real HTTP. */
export interface HttpDeps {
  fetch: typeof fetch;
  clock: Clock;
  logger: Logger;
  /** Per-attempt timeout of every network call, ms. */
  timeoutMs?: number;
  /** Retries after a 429/5xx/connection failure; total wait is capped so callers hear back in seconds. */
  maxRetries?: number;
}

type Attempt =
  | { kind: 'response'; response: ProviderResponse }
  | { kind: 'timeout'; cause: unknown }
  | { kind: 'unreached' | 'dropped' | 'failed'; reason: string; cause: unknown };

function errorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  const { code, cause, errors } = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') return code;
  if (Array.isArray(errors)) {
    for (const inner of errors) {
      const found = errorCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return errorCode(cause, depth + 1);
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  const causeName = (err as { cause?: { name?: unknown } } | null)?.cause?.name;
  return name === 'TimeoutError' || causeName === 'TimeoutError';
}

/** Provider response bodies are read up to this many bytes (docs/design.md, "Hostile input"). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** A body that would not fit: treated like an unreadable one. */
const TOO_LARGE = 'response larger than 1 MiB';

/**
 * Reads a body as text (UTF-8, as `Response.text()`), streaming it and stopping at `limit` bytes, so a
 * hostile or broken provider cannot make the broker buffer gigabytes.
 */
export async function readBoundedText(res: Response, limit = MAX_RESPONSE_BYTES): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw Object.assign(new Error(TOO_LARGE), { code: TOO_LARGE });
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw Object.assign(new Error(TOO_LARGE), { code: TOO_LARGE });
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

async function attemptOnce(
  fetchFn: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Attempt> {
  try {
    const res = await fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const bodyText = await readBoundedText(res);
    return { kind: 'response', response: { status: res.status, headers: res.headers, bodyText } };
  } catch (cause) {
    const code = errorCode(cause);
    // Never repeated: the provider answered; the same request would get the same answer.
    if (code === TOO_LARGE) return { kind: 'failed', reason: TOO_LARGE, cause };
    if (isTimeout(cause) || (code !== undefined && TIMEOUTS.has(code))) return { kind: 'timeout', cause };
    if (code !== undefined && UNREACHED.has(code)) return { kind: 'unreached', reason: code, cause };
    if (code !== undefined && DROPPED.has(code)) return { kind: 'dropped', reason: code, cause };
    return { kind: 'failed', reason: code ?? 'network error', cause };
  }
}

function backoffMs(retry: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retry);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

interface Verdict {
  /** The provider cannot have acted on the request, or repeating it is harmless. */
  repeatable: boolean;
  waitMs: number;
  detail: string;
  /** Whole seconds for the caller, should this be the last attempt. */
  retryAfter: number;
  providerError?: ProviderErrorInfo;
  cause?: unknown;
}

interface Context {
  host: string;
  timeoutMs: number;
  redeemsGrant: boolean;
  attempt: number;
  now: number;
}

const NOT_REPEATED = 'it was not repeated because the provider may already have redeemed the grant';

function judge(outcome: Attempt, ctx: Context): Verdict {
  const { host, attempt, redeemsGrant } = ctx;
  const tries = attempt === 1 ? '' : ` (${attempt} attempts)`;
  const later = `Try again in ${DEFAULT_RETRY_AFTER_S} s.`;
  if (outcome.kind === 'response') {
    const { status, headers, bodyText } = outcome.response;
    const providerError = providerErrorOf({ status, oauthError: parseOAuthError(bodyText) });
    const retryAfter = parseRetryAfter(headers.get('retry-after'), ctx.now);
    if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_S) {
      const detail = `${host} is throttling or unavailable (HTTP ${status}) and asks to wait ${retryAfter} s; try again then.`;
      return { repeatable: false, waitMs: 0, detail, retryAfter, providerError };
    }
    if (status === 504 && redeemsGrant) {
      const detail = `${host} timed out behind its gateway (HTTP 504); ${NOT_REPEATED}. ${later}`;
      return { repeatable: false, waitMs: 0, detail, retryAfter: DEFAULT_RETRY_AFTER_S, providerError };
    }
    const seconds = retryAfter ?? DEFAULT_RETRY_AFTER_S;
    return {
      repeatable: true,
      waitMs: retryAfter === undefined ? backoffMs(attempt - 1) : retryAfter * 1000,
      detail: `${host} answered HTTP ${status}${tries}; try again in ${seconds} s.`,
      retryAfter: seconds,
      providerError,
    };
  }
  const { cause } = outcome;
  const base = { waitMs: backoffMs(attempt - 1), retryAfter: DEFAULT_RETRY_AFTER_S, cause };
  switch (outcome.kind) {
    case 'unreached':
      return {
        ...base,
        repeatable: true,
        detail: `Could not reach ${host} (${outcome.reason})${tries}. ${later}`,
      };
    case 'timeout': {
      const detail = `${host} did not answer within ${ctx.timeoutMs / 1000} s${tries}`;
      return redeemsGrant
        ? { ...base, repeatable: false, detail: `${detail}; ${NOT_REPEATED}. ${later}` }
        : { ...base, repeatable: true, detail: `${detail}. ${later}` };
    }
    case 'dropped': {
      const detail = `The connection to ${host} broke (${outcome.reason})${tries}`;
      return redeemsGrant
        ? { ...base, repeatable: false, detail: `${detail}; ${NOT_REPEATED}. ${later}` }
        : { ...base, repeatable: true, detail: `${detail}. ${later}` };
    }
    case 'failed':
      // TLS and similar failures do not heal within seconds.
      return {
        ...base,
        repeatable: false,
        detail: `Could not talk to ${host} (${outcome.reason}). ${later}`,
      };
  }
}

function init(request: OAuthRequest): RequestInit {
  const headers = { accept: 'application/json', ...request.headers };
  if (request.method === 'GET') return { method: 'GET', headers };
  return {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(request.form).toString(),
    // Redirects are not followed: the body may hold a secret.
    redirect: 'manual',
  };
}

/**
 * Sends one `OAuthRequest` (a form POST, RFC 6749 §4.1.3, §6, Appendix B; or a GET) and returns
 * whatever the provider answered, except that 429/5xx, timeouts and unreachable hosts are retried
 * (within `deps.maxRetries` and a few seconds; never for a request marked `once`, and for one that
 * `redeemsGrant` only while the provider cannot have seen it: see there why) and end as
 * `upstream_unavailable` (RFC 9110 §10.2.3 `Retry-After` honoured). The caller decides what any
 * other status means.
 */
export async function send(deps: HttpDeps, request: OAuthRequest): Promise<ProviderResponse> {
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRetries = request.once ? 0 : (deps.maxRetries ?? DEFAULT_MAX_RETRIES);
  const { url, connectionId } = request;
  const { host, pathname } = new URL(url);
  const where = { host, path: pathname, connectionId };
  const requestInit = init(request);
  let waitedMs = 0;
  for (let attempt = 1; ; attempt++) {
    const outcome = await attemptOnce(deps.fetch, url, requestInit, timeoutMs);
    if (outcome.kind === 'response' && !RETRYABLE_STATUS.has(outcome.response.status)) {
      return outcome.response;
    }
    const verdict = judge(outcome, {
      host,
      timeoutMs,
      redeemsGrant: request.redeemsGrant,
      attempt,
      now: deps.clock.now(),
    });
    const why =
      outcome.kind === 'response'
        ? { status: outcome.response.status }
        : { reason: outcome.kind === 'timeout' ? 'timeout' : outcome.reason };
    if (!verdict.repeatable || attempt > maxRetries || waitedMs + verdict.waitMs > MAX_TOTAL_WAIT_MS) {
      deps.logger.warn('provider_unavailable', {
        ...where,
        ...why,
        attempts: attempt,
        retryAfter: verdict.retryAfter,
      });
      throw new BrokerError('upstream_unavailable', verdict.detail, {
        connectionId,
        retryAfter: verdict.retryAfter,
        providerError: verdict.providerError,
        cause: verdict.cause,
      });
    }
    deps.logger.warn('provider_retry', { ...where, ...why, attempt, delayMs: verdict.waitMs });
    waitedMs += verdict.waitMs;
    await sleep(verdict.waitMs);
  }
}

/** The answer's body as JSON (discovery metadata, UserInfo, an API's answer); undefined when it is not. */
export function jsonBody(response: ProviderResponse): unknown {
  return parseJson(response.bodyText);
}

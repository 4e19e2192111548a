/**
 * Reading one answer of `GET /api/token`: a token, or the broker's problem+json turned into a
 * `BrokerError`; anything else (HTML from a proxy, garbage, a truncated body) is `invalid_response`.
 * Messages name the status and content type, never the body: a body may echo what it was sent.
 */
import { BrokerError, type BrokerRemedy } from './errors.js';

export interface TokenAnswer {
  token: string;
  expiresOnTimestamp: number;
  /** The scopes the broker says the token carries (space-separated). */
  scope: string;
  /** Present when asked with `format=xoauth2`. */
  xoauth2?: string;
}

/** Whole seconds of a `Retry-After` header (delta-seconds or an HTTP date), undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A 200 body: `access_token` and an expiry (`expires_on` unix seconds, or `expires_in`). */
export function tokenFromBody(body: unknown, status: number, now: number): TokenAnswer {
  const bad = (what: string) =>
    new BrokerError('invalid_response', `The broker answered HTTP ${status} but ${what}.`, { status });
  if (!isRecord(body)) throw bad('not with a JSON object');
  const token = body.access_token;
  if (typeof token !== 'string' || token.length === 0) throw bad('without an access_token');
  const on = Number(body.expires_on);
  const inSec = Number(body.expires_in);
  let expiresOnTimestamp: number;
  if (body.expires_on !== undefined && Number.isFinite(on) && on > 0) expiresOnTimestamp = on * 1000;
  else if (body.expires_in !== undefined && Number.isFinite(inSec)) expiresOnTimestamp = now + inSec * 1000;
  else throw bad('without a readable expires_on');
  const answer: TokenAnswer = {
    token,
    expiresOnTimestamp,
    scope: typeof body.scope === 'string' ? body.scope : '',
  };
  if (typeof body.xoauth2 === 'string') answer.xoauth2 = body.xoauth2;
  return answer;
}

/** A non-200 answer as the error it is. */
export function errorFromAnswer(status: number, headers: Headers, text: string, now: number): BrokerError {
  const contentType = headers.get('content-type') ?? 'no content type';
  const retryAfter = parseRetryAfter(headers.get('retry-after'), now);
  const problem = /json/i.test(contentType) ? parseJson(text) : undefined;
  if ((!isRecord(problem) || typeof problem.code !== 'string') && status === 401) {
    // Azure's Functions host refuses a wrong function key itself, with an empty 401.
    return new BrokerError(
      'unauthorized',
      'The broker refused the credentials (HTTP 401): a wrong or missing function key, or a caller token it does not accept.',
      { status },
    );
  }
  if (!isRecord(problem) || typeof problem.code !== 'string') {
    const what = text.length === 0 ? 'an empty body' : `${contentType.split(';')[0]} instead of problem+json`;
    return new BrokerError(
      'invalid_response',
      `The broker answered HTTP ${status} with ${what}: something in front of it (a proxy, the platform) answered, or it is not the broker.`,
      { status, retryAfter },
    );
  }
  const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
  const title = typeof problem.title === 'string' ? problem.title : problem.code;
  const remedy =
    isRecord(problem.remedy) && typeof problem.remedy.kind === 'string'
      ? ({ kind: problem.remedy.kind, text: String(problem.remedy.text ?? '') } satisfies BrokerRemedy)
      : null;
  const message = `${problem.code} (HTTP ${status}): ${detail ?? title}${remedy ? ` What to do: ${remedy.text}` : ''}`;
  return new BrokerError(problem.code, message, {
    status,
    remedy,
    retryAfter,
    consentUrl: typeof problem.consentUrl === 'string' ? problem.consentUrl : undefined,
  });
}

/** The body of a 200, or why it is not a token. */
export function readTokenAnswer(status: number, headers: Headers, text: string, now: number): TokenAnswer {
  const body = parseJson(text);
  if (body === undefined) {
    const contentType = (headers.get('content-type') ?? 'no content type').split(';')[0];
    throw new BrokerError(
      'invalid_response',
      `The broker answered HTTP ${status} with ${text.length === 0 ? 'an empty body' : `a body that is not JSON (${contentType})`}.`,
      { status },
    );
  }
  return tokenFromBody(body, status, now);
}

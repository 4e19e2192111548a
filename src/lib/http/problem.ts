import { BrokerError, ERROR_TABLE, type Remedy } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HttpAnswer } from './answer.js';

/**
 * The one mapping from an error to HTTP (RFC 9457 problem details). Handlers, the error page and
 * the embedded host's own refusals all pass through `toProblem` and `problemHeaders`, so a code has
 * one status, one title and one set of headers wherever it is answered.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  connection?: string;
  consentUrl?: string;
  providerError?: { error: string; aadsts?: number };
  /** What a person does about it, when the failure is the connection's (DESIGN.md, "Telling people what to do"). */
  remedy?: Remedy;
  /** Every schema violation of an admin write's body. */
  errors?: { path: string; message: string }[];
}

/** `upstream_unavailable` without a provider's own `Retry-After`. */
const DEFAULT_RETRY_AFTER_S = 5;

/**
 * Any thrown value as a problem. Only `BrokerError`s speak: anything else is an internal error whose
 * message stays out of the body (it could carry a token), logged by name only.
 */
export function toProblem(err: unknown, publicUrl: string, logger?: Logger): Problem {
  const known = asBrokerError(err, logger);
  const { status, title } = ERROR_TABLE[known.code];
  const problem: Problem = { type: 'about:blank', title, status, code: known.code, detail: known.message };
  if (known.connectionId) problem.connection = known.connectionId;
  if (known.code === 'consent_required' && known.connectionId) {
    problem.consentUrl = `${publicUrl}/api/start?connection=${encodeURIComponent(known.connectionId)}`;
  }
  if (known.providerError) {
    problem.providerError = { error: known.providerError.error };
    if (known.providerError.aadsts) problem.providerError.aadsts = known.providerError.aadsts;
  }
  if (known.remedy) problem.remedy = known.remedy;
  if (known.errors) problem.errors = known.errors;
  return problem;
}

/** The headers a problem's code asks for, the same on the JSON body and on the HTML page. */
export function problemHeaders(err: unknown): Record<string, string> {
  const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
  if (!(err instanceof BrokerError)) return headers;
  if (err.code === 'upstream_unavailable') {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(err.retryAfter ?? DEFAULT_RETRY_AFTER_S)));
  }
  if (err.code === 'unauthorized') headers['WWW-Authenticate'] = err.challenge ?? 'FunctionKey';
  return headers;
}

/** A thrown value as `application/problem+json`. */
export function problemResponse(
  err: unknown,
  publicUrl: string,
  logger?: Logger,
  extraHeaders: Record<string, string> = {},
): HttpAnswer {
  const problem = toProblem(err, publicUrl, logger);
  return {
    status: problem.status,
    headers: { ...extraHeaders, ...problemHeaders(err), 'Content-Type': 'application/problem+json' },
    body: JSON.stringify(problem),
  };
}

function asBrokerError(err: unknown, logger?: Logger): BrokerError {
  if (err instanceof BrokerError) return err;
  logger?.error('request.internal_error', { error: err instanceof Error ? err.name : typeof err });
  return new BrokerError('internal_error', 'The broker failed unexpectedly. The log has the details.');
}

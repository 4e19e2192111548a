import type { HttpResponseInit } from '@azure/functions';
import { BrokerError, ERROR_TABLE } from '../errors.js';
import type { Logger } from '../logger.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  connection?: string;
  consentUrl?: string;
  providerError?: { error: string; aadsts?: number };
}

/**
 * Any thrown value as an RFC 9457 problem. Only `BrokerError`s speak: anything else is an internal
 * error whose message stays out of the body (it could carry a token), logged by name only.
 */
export function toProblem(err: unknown, publicUrl: string, logger?: Logger): Problem {
  if (!(err instanceof BrokerError)) {
    logger?.error('request.internal_error', { error: err instanceof Error ? err.name : typeof err });
    return {
      type: 'about:blank',
      title: ERROR_TABLE.internal_error.title,
      status: ERROR_TABLE.internal_error.status,
      code: 'internal_error',
      detail: 'The broker failed unexpectedly. The log has the details.',
    };
  }
  const problem: Problem = {
    type: 'about:blank',
    title: ERROR_TABLE[err.code].title,
    status: ERROR_TABLE[err.code].status,
    code: err.code,
    detail: err.message,
  };
  if (err.connectionId) problem.connection = err.connectionId;
  if (err.code === 'consent_required' && err.connectionId) {
    problem.consentUrl = `${publicUrl}/api/start?connection=${encodeURIComponent(err.connectionId)}`;
  }
  if (err.providerError) {
    problem.providerError = { error: err.providerError.error };
    if (err.providerError.aadsts) problem.providerError.aadsts = err.providerError.aadsts;
  }
  return problem;
}

export function problemResponse(err: unknown, publicUrl: string, logger?: Logger): HttpResponseInit {
  const problem = toProblem(err, publicUrl, logger);
  const headers: Record<string, string> = {
    'Content-Type': 'application/problem+json',
    'Cache-Control': 'no-store',
  };
  if (problem.code === 'upstream_unavailable') {
    headers['Retry-After'] = String(
      err instanceof BrokerError && err.retryAfter ? Math.max(1, Math.ceil(err.retryAfter)) : 5,
    );
  }
  if (problem.code === 'unauthorized') headers['WWW-Authenticate'] = 'FunctionKey';
  return { status: problem.status, headers, body: JSON.stringify(problem) };
}

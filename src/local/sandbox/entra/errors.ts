/**
 * Errors as Entra's endpoints word them: an OAuth `error`, an AADSTS number and its text. The
 * broker's error classification reads exactly these fields, so they are kept as Entra sends them.
 */
import { randomUUID } from 'node:crypto';

/** An error as Entra's token endpoint words it; `status` 400, or 401 for invalid_client. */
export class EntraError extends Error {
  constructor(
    readonly error: string,
    readonly code: number,
    message: string,
    readonly status = 400,
    readonly suberror?: string,
  ) {
    super(message);
  }
}

export const missingParam = (name: string) =>
  new EntraError(
    'invalid_request',
    900144,
    `The request body must contain the following parameter: '${name}'.`,
  );

export function appNotFound(clientId: string, tenant: string): EntraError {
  const message = `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`;
  return new EntraError('unauthorized_client', 700016, message);
}

/** What an unknown or foreign code or refresh token answers. */
export const malformedGrant = () =>
  new EntraError('invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');

/** A code or refresh token issued to another client. */
export const foreignGrant = () =>
  new EntraError('invalid_grant', 70000, 'The provided grant is invalid or malformed.');

/** Entra's error body: the AADSTS text with trace, correlation and time appended, plus the same as fields. */
export function entraErrorBody(err: EntraError, correlationId: string, now: number) {
  const timestamp = new Date(now)
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace('T', ' ');
  const traceId = randomUUID();
  const description = `AADSTS${err.code}: ${err.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`;
  return {
    error: err.error,
    error_description: description,
    error_codes: [err.code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
    ...(err.suberror ? { suberror: err.suberror } : {}),
  };
}

import type { Connection } from '../config/connections.js';
import type { Failure } from '../errors.js';
import { OAUTH_ERRORS } from '../oauth/index.js';
import { ENTRA_ERRORS } from './entra-errors.js';

/**
 * What a provider's `error=` on the consent callback (RFC 6749 §4.1.2.1) means, from the same tables
 * as a token endpoint's answer: the provider's own number first (Entra's AADSTS), then RFC 6749.
 * Undefined when neither knows it (the remedy then says to sign in again).
 */
export function callbackFailure(
  provider: Connection['provider'],
  error: string,
  aadsts: number | undefined,
): Failure | undefined {
  const row =
    (provider === 'entra' && aadsts !== undefined ? ENTRA_ERRORS[aadsts] : undefined) ?? OAUTH_ERRORS[error];
  return row ? { ...row } : undefined;
}

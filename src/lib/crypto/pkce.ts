import { createHash } from 'node:crypto';
import { randomToken } from './tokens.js';

/** RFC 7636 S256 challenge of a verifier. */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * RFC 7636 S256 pair. 32 random bytes in base64url give a 43-char verifier whose alphabet
 * (A-Z a-z 0-9 - _) lies inside the RFC's unreserved set, the minimum length the RFC allows.
 */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomToken(32);
  return { verifier, challenge: pkceChallenge(verifier) };
}

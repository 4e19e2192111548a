import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Unguessable token (state, nonce, function key), base64url so it fits URLs, cookies and headers unescaped. */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 1)
    throw new Error('randomToken needs a positive whole number of bytes');
  return randomBytes(bytes).toString('base64url');
}

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

/**
 * Constant-time string comparison. Hashing first gives both sides the same length, so neither the
 * length nor the position of the first difference leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  return matcherOf(b)(a);
}

/** `safeEqual` against one fixed secret, its digest made once (the host checks its key per request). */
export function matcherOf(expected: string): (given: string) => boolean {
  const digest = sha256(expected);
  return (given) => timingSafeEqual(sha256(given), digest);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

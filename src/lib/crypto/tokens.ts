import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Unguessable token (state, nonce, function key), base64url so it fits URLs, cookies and headers unescaped. */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 1)
    throw new Error('randomToken needs a positive whole number of bytes');
  return randomBytes(bytes).toString('base64url');
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

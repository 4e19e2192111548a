import { randomBytes } from 'node:crypto';
import { decrypt, encrypt, IV_BYTES, KEY_BYTES, TAG_BYTES } from './aead.js';

/**
 * Sealed consent state (cookies, device poll URLs): AES-256-GCM over `{e: expiresAtMs, p: payload}`,
 * the purpose as additional authenticated data so a value sealed for one use is refused by another.
 *
 * Wire format, base64url: version (1 byte) | IV (12) | ciphertext | tag (16).
 */
const VERSION = 1;
/** Cookies top out near 4 KB; anything far longer is not ours and is not worth decoding. */
const MAX_SEALED_CHARS = 16_384;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function newSealKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function checkKey(key: Buffer, purpose: string): void {
  // A wrong key or purpose is a programming error, not bad input: fail loudly.
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) throw new Error('seal key must be 32 bytes');
  if (typeof purpose !== 'string' || purpose.length === 0)
    throw new Error('seal purpose must be a non-empty string');
}

export function seal(key: Buffer, purpose: string, payload: unknown, expiresAtMs: number): string {
  checkKey(key, purpose);
  if (!Number.isFinite(expiresAtMs)) throw new Error('seal expiry must be a finite epoch milliseconds value');
  const plaintext = Buffer.from(JSON.stringify({ e: expiresAtMs, p: payload }), 'utf8');
  const { iv, data, tag } = encrypt(key, purpose, plaintext);
  return Buffer.concat([Buffer.from([VERSION]), iv, data, tag]).toString('base64url');
}

/** The payload, or `undefined` when `sealed` is malformed, forged, for another purpose or expired. */
export function unseal<T>(key: Buffer, purpose: string, sealed: string, nowMs: number): T | undefined {
  checkKey(key, purpose);
  if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_CHARS || !BASE64URL.test(sealed))
    return undefined;
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < 1 + IV_BYTES + 1 + TAG_BYTES || raw[0] !== VERSION) return undefined;
  const iv = raw.subarray(1, 1 + IV_BYTES);
  const data = raw.subarray(1 + IV_BYTES, raw.length - TAG_BYTES);
  const tag = raw.subarray(raw.length - TAG_BYTES);
  const plaintext = decrypt(key, purpose, { iv, data, tag });
  if (!plaintext) return undefined;
  let envelope: unknown;
  try {
    envelope = JSON.parse(plaintext.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof envelope !== 'object' || envelope === null) return undefined;
  const { e, p } = envelope as { e?: unknown; p?: unknown };
  if (typeof e !== 'number' || !Number.isFinite(nowMs) || nowMs >= e) return undefined;
  return p as T;
}

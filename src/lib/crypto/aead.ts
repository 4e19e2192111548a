import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The broker's one authenticated cipher: AES-256-GCM with a fresh 96-bit IV per message and a
 * 128-bit tag. `aad` binds the ciphertext to its use (a seal's purpose, a stored secret's name), so a
 * value lifted from one place is refused in another. Sealed state and the file store differ only in
 * how they write the three parts down.
 */
export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export interface Encrypted {
  iv: Buffer;
  data: Buffer;
  tag: Buffer;
}

export function encrypt(key: Buffer, aad: string, plaintext: Buffer): Encrypted {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, data, tag: cipher.getAuthTag() };
}

/** The plaintext, or undefined when anything was altered, the key is another, or `aad` differs. */
export function decrypt(key: Buffer, aad: string, { iv, data, tag }: Encrypted): Buffer | undefined {
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    return undefined;
  }
}

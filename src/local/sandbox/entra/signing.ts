/** RS256 JWTs, signed and verified with key pairs of this simulator alone; the public keys are its JWKS. */
import { generateKeyPairSync, type KeyObject, randomBytes, sign, verify } from 'node:crypto';

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function newKey(): SigningKey {
  // A fresh key per simulator: access and id tokens from one run are worthless to any other.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: randomBytes(12).toString('base64url'), privateKey, publicKey };
}

export class JwtSigner {
  /** The newest first; it signs. Older ones stay published until retired, as Entra overlaps keys. */
  private keys: SigningKey[] = [newKey()];

  sign(claims: Record<string, unknown>): string {
    const key = this.keys[0]!;
    const header = b64json({ typ: 'JWT', alg: 'RS256', kid: key.kid });
    const input = `${header}.${b64json(claims)}`;
    return `${input}.${sign('RSA-SHA256', Buffer.from(input), key.privateKey).toString('base64url')}`;
  }

  /** The claims of a token one of the published keys signed; undefined for anything else. Expiry is the caller's. */
  verify(token: string): Record<string, unknown> | undefined {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return undefined;
    const ok = this.keys.some((key) =>
      verify(
        'RSA-SHA256',
        Buffer.from(`${header}.${payload}`),
        key.publicKey,
        Buffer.from(signature, 'base64url'),
      ),
    );
    if (!ok) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
  }

  /** Key rollover: a new key signs from now on; the previous one stays published unless `retire`d. */
  roll(options: { retire?: boolean } = {}): void {
    this.keys = options.retire ? [newKey()] : [newKey(), ...this.keys.slice(0, 1)];
  }

  /** RFC 7517 JWK Set of the published keys, as `/discovery/v2.0/keys` serves it. */
  jwks(): { keys: object[] } {
    return {
      keys: this.keys.map(({ kid, publicKey }) => ({
        ...publicKey.export({ format: 'jwk' }),
        kid,
        use: 'sig',
        alg: 'RS256',
      })),
    };
  }
}

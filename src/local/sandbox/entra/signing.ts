/** RS256 JWTs, signed and verified with a key pair of this simulator alone. */
import { generateKeyPairSync, type KeyObject, randomBytes, sign, verify } from 'node:crypto';

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export class JwtSigner {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly kid = randomBytes(12).toString('base64url');

  constructor() {
    // A fresh key per simulator: access and id tokens from one run are worthless to any other.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  sign(claims: Record<string, unknown>): string {
    const header = b64json({ typ: 'JWT', alg: 'RS256', kid: this.kid });
    const input = `${header}.${b64json(claims)}`;
    return `${input}.${sign('RSA-SHA256', Buffer.from(input), this.privateKey).toString('base64url')}`;
  }

  /** The claims of a token this signer signed; undefined for anything else. Expiry is the caller's. */
  verify(token: string): Record<string, unknown> | undefined {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return undefined;
    const ok = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      this.publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!ok) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
  }
}

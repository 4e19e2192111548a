import { createHash, createPrivateKey, type KeyObject, randomUUID, X509Certificate } from 'node:crypto';
import type { Connection } from '../config/connections.js';
import { credentialSecretName } from '../config/connections.js';
import { BrokerError, CertificateBundleError } from '../errors.js';
import { type ClientAuth, clientAssertionAuthentication } from '../oauth/index.js';
import type { DialectDeps } from './provider.js';

/**
 * A certificate credential (docs/design.md, "Connections": `{"type": "certificate"}`): the store secret is a PEM bundle,
 * private key plus certificate chain, as Key Vault serves the secret of a PEM certificate. The client
 * authenticates with an RS256 JWT it signs itself (RFC 7523 §2.2, OpenID Connect Core §9
 * `private_key_jwt`; Entra's "certificate credentials").
 */
export interface CertificateBundle {
  privateKey: KeyObject;
  /** The certificate whose public key is the private key's. */
  leaf: X509Certificate;
  /** The `x5t#S256` header: base64url SHA-256 of the leaf's DER (RFC 7515 §4.1.8). */
  x5tS256: string;
  /** SHA-1 of the leaf's DER in upper-case hex: the thumbprint Entra shows for an uploaded certificate. */
  thumbprint: string;
  subject: string;
  notAfter: Date;
}

/** Lives with every error class in errors.ts; re-exported for the callers that import it from here. */
export { CertificateBundleError };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY']);
/** Entra accepts assertions valid for at most 10 minutes; 5 leaves room for clock skew. */
const ASSERTION_LIFETIME_S = 300;

/** Parses and checks a PEM bundle: one RSA private key and the certificate it belongs to (plus any chain). */
export function parseCertificateBundle(pem: string): CertificateBundle {
  const blocks = [...pem.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] ?? '', text: m[0] }));
  const keyBlock = blocks.find((b) => KEY_LABELS.has(b.label));
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY'))
    throw new CertificateBundleError('holds an encrypted private key; store it unencrypted (Key Vault does)');
  if (!keyBlock) throw new CertificateBundleError('holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
  const certBlocks = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certBlocks.length === 0)
    throw new CertificateBundleError('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  let privateKey: KeyObject;
  let certificates: X509Certificate[];
  try {
    privateKey = createPrivateKey(keyBlock.text);
    certificates = certBlocks.map((b) => new X509Certificate(b.text));
  } catch {
    throw new CertificateBundleError('does not parse as a PEM private key and certificate');
  }
  if (privateKey.asymmetricKeyType !== 'rsa')
    throw new CertificateBundleError(`has a ${privateKey.asymmetricKeyType} key; RS256 needs an RSA key`);
  const leaf = certificates.find((c) => c.checkPrivateKey(privateKey));
  if (!leaf) throw new CertificateBundleError('has a private key that matches none of its certificates');
  return {
    privateKey,
    leaf,
    x5tS256: createHash('sha256').update(leaf.raw).digest('base64url'),
    thumbprint: createHash('sha1').update(leaf.raw).digest('hex').toUpperCase(),
    subject: leaf.subject.replace(/\n/g, ', '),
    notAfter: new Date(leaf.validTo),
  };
}

/**
 * RFC 7523 §3: `iss` = `sub` = the client id, `aud` = the token endpoint, a fresh `jti`, a short life.
 * jose is loaded on the first signature: only certificate connections need it, and every cold start
 * of the others would parse it for nothing.
 */
export async function signClientAssertion(
  bundle: CertificateBundle,
  claims: { clientId: string; audience: string; nowMs: number },
): Promise<string> {
  const { SignJWT } = await import('jose');
  const now = Math.floor(claims.nowMs / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', 'x5t#S256': bundle.x5tS256 })
    .setIssuer(claims.clientId)
    .setSubject(claims.clientId)
    .setAudience(claims.audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_S)
    .sign(bundle.privateKey);
}

/** One parse per bundle content: the store's value is cached for minutes, and parsing costs a little. */
const parsed = new Map<string, { digest: string; bundle: CertificateBundle }>();

/**
 * The certificate of `connection` (its `credential.secretName`), parsed and checked, or
 * `client_misconfigured` naming the secret (never its content). Its `notAfter` is reported to
 * `deps.certificateLoaded`, which feeds the `client_certificate_expiry` deadline.
 */
export async function loadCertificate(deps: DialectDeps, connection: Connection): Promise<CertificateBundle> {
  const name = credentialSecretName(connection.credential) ?? '<credential.secretName>';
  const pem = await deps.clientSecret();
  const fix = `Store the PEM bundle (private key and certificate) with: broker secrets set ${name}`;
  if (!pem) {
    throw new BrokerError(
      'client_misconfigured',
      `The certificate "${name}" of connection ${connection.id} is not in the secret store. ${fix}`,
      { connectionId: connection.id },
    );
  }
  const digest = createHash('sha256').update(pem).digest('hex');
  const key = `${connection.id}/${name.toLowerCase()}`;
  let bundle = parsed.get(key)?.digest === digest ? parsed.get(key)?.bundle : undefined;
  if (!bundle) {
    try {
      bundle = parseCertificateBundle(pem);
    } catch (err) {
      const what = err instanceof CertificateBundleError ? err.message : 'cannot be read';
      throw new BrokerError(
        'client_misconfigured',
        `The certificate "${name}" of connection ${connection.id} ${what}. ${fix}`,
        { connectionId: connection.id },
      );
    }
    parsed.set(key, { digest, bundle });
  }
  deps.certificateLoaded?.(name, bundle.notAfter);
  return bundle;
}

/** `private_key_jwt` client authentication with a fresh assertion for `audience` (the token endpoint). */
export async function certificateAuthentication(
  deps: DialectDeps,
  connection: Connection,
  audience: string,
): Promise<ClientAuth> {
  const bundle = await loadCertificate(deps, connection);
  const assertion = await signClientAssertion(bundle, {
    clientId: connection.clientId,
    audience,
    nowMs: deps.clock.now(),
  });
  return clientAssertionAuthentication(connection.clientId, assertion);
}

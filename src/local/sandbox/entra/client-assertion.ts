/**
 * Client assertions at the token endpoint (RFC 7523 §3) as Entra checks them: an app's own JWT
 * signed by a certificate uploaded to it, or a federated credential's token (a managed identity's).
 * Each mistake answers the AADSTS error Entra gives for it.
 */
import { createHash, createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import type { SimulatorClient, SimulatorContext, SimulatorRequest } from './context.js';
import { EntraError } from './errors.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Clock skew Entra tolerates on `exp` / `nbf`. */
const SKEW_S = 300;

/** `jti`s of certificate assertions already presented, per simulator (its client map stands for it). */
const seenJtis = new WeakMap<object, Map<string, number>>();

/** How many `jti`s the simulator of `ctx` remembers: for the test of their bound. */
export const rememberedJtis = (ctx: Pick<SimulatorContext, 'clients'>): number =>
  seenJtis.get(ctx.clients)?.size ?? 0;

const invalidClient = (code: number, message: string) => new EntraError('invalid_client', code, message, 401);

export function hasAssertionCredentials(client: SimulatorClient): boolean {
  return Boolean(client.federatedCredentials?.length || client.certificates?.length);
}

interface Jwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  input: Buffer;
  signature: Buffer;
}

function decode(assertion: string): Jwt {
  const [header, payload, signature, ...rest] = assertion.split('.');
  try {
    if (!header || !payload || !signature || rest.length > 0) throw new Error('parts');
    return {
      header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')),
      input: Buffer.from(`${header}.${payload}`),
      signature: Buffer.from(signature, 'base64url'),
    };
  } catch {
    throw invalidClient(50027, 'Invalid JWT token. Token format not valid.');
  }
}

const signedBy = (jwt: Jwt, key: KeyObject) =>
  jwt.header.alg === 'RS256' && verify('RSA-SHA256', jwt.input, key, jwt.signature);

function checkTime(ctx: SimulatorContext, claims: Record<string, unknown>): void {
  const now = Math.floor(ctx.now() / 1000);
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : undefined;
  if (exp === undefined || exp + SKEW_S < now || (nbf !== undefined && nbf - SKEW_S > now)) {
    throw invalidClient(700024, 'Client assertion is not within its valid time range.');
  }
}

/**
 * Authenticates `client` by the request's `client_assertion`. An assertion the app issued itself
 * (`iss` = its client id) must be signed by one of its certificates, name the token endpoint as `aud`,
 * and carry a `jti` never presented before; any other is matched against its federated credentials.
 */
export function authenticateAssertion(
  ctx: SimulatorContext,
  req: SimulatorRequest,
  client: SimulatorClient,
): void {
  if (req.form.get('client_assertion_type') !== JWT_BEARER) {
    throw new EntraError(
      'invalid_request',
      900144,
      "The request body must contain the following parameter: 'client_assertion_type'.",
    );
  }
  if (!client.secret && !hasAssertionCredentials(client)) {
    throw invalidClient(
      700025,
      "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    );
  }
  const jwt = decode(req.form.get('client_assertion') ?? '');
  if (jwt.claims.iss === client.clientId) checkCertificateAssertion(ctx, req, client, jwt);
  else checkFederatedAssertion(ctx, client, jwt);
}

function checkCertificateAssertion(
  ctx: SimulatorContext,
  req: SimulatorRequest,
  client: SimulatorClient,
  jwt: Jwt,
): void {
  const x5t = jwt.header['x5t#S256'] ?? jwt.header.x5t;
  const certificate = (client.certificates ?? [])
    .map((pem) => new X509Certificate(pem))
    .find((cert) => {
      const sha256 = createHash('sha256').update(cert.raw).digest('base64url');
      const sha1 = createHash('sha1').update(cert.raw).digest('base64url');
      return x5t === sha256 || x5t === sha1;
    });
  if (!certificate) {
    throw invalidClient(
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${String(x5t)}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${client.clientId}'.]`,
    );
  }
  if (!signedBy(jwt, certificate.publicKey))
    throw invalidClient(700027, 'Client assertion failed signature validation.');
  if (jwt.claims.sub !== client.clientId)
    throw invalidClient(
      50013,
      "Assertion failed signature validation. [Reason - 'sub' must be the client id.]",
    );
  const tokenEndpoint = `${ctx.issuerBase(req)}/${req.tenant}/oauth2/v2.0/token`;
  if (jwt.claims.aud !== tokenEndpoint) {
    throw invalidClient(
      50013,
      `Assertion audience claim does not match the required value. The audience in the assertion was '${String(jwt.claims.aud)}'.`,
    );
  }
  checkTime(ctx, jwt.claims);
  const jti = typeof jwt.claims.jti === 'string' ? jwt.claims.jti : '';
  let seen = seenJtis.get(ctx.clients);
  if (!seen) {
    seen = new Map();
    seenJtis.set(ctx.clients, seen);
  }
  if (!jti || seen.has(jti)) {
    throw invalidClient(
      50013,
      'Assertion is invalid: the assertion has already been presented (jti replay).',
    );
  }
  // A jti whose assertion has expired can go: a replay of it fails the time check first.
  const now = Math.floor(ctx.now() / 1000);
  for (const [old, exp] of seen) if (!(exp + SKEW_S >= now)) seen.delete(old);
  seen.set(jti, Number(jwt.claims.exp));
}

function checkFederatedAssertion(ctx: SimulatorContext, client: SimulatorClient, jwt: Jwt): void {
  const credentials = client.federatedCredentials ?? [];
  const { iss, sub, aud } = jwt.claims;
  if (credentials.length === 0)
    throw invalidClient(70021, 'No matching federated identity record found for presented assertion.');
  const byIssuer = credentials.filter((c) => c.issuer === iss);
  if (byIssuer.length === 0) {
    throw invalidClient(
      700211,
      `No matching federated identity record found for presented assertion issuer '${String(iss)}'.`,
    );
  }
  const bySubject = byIssuer.filter((c) => c.subject === sub);
  if (bySubject.length === 0) {
    throw invalidClient(
      700213,
      `No matching federated identity record found for presented assertion subject '${String(sub)}'.`,
    );
  }
  const credential = bySubject.find((c) => c.audience === aud);
  if (!credential) {
    throw invalidClient(
      700212,
      `No matching federated identity record found for presented assertion audience '${String(aud)}'.`,
    );
  }
  const keys = credential.publicKeys.map((k) => (typeof k === 'string' ? createPublicKey(k) : k));
  if (!keys.some((key) => signedBy(jwt, key)))
    throw invalidClient(700027, 'Client assertion failed signature validation.');
  checkTime(ctx, jwt.claims);
}

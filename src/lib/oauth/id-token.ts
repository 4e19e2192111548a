import { BrokerError } from '../errors.js';
import { startPath } from '../links.js';
import { parseJson } from './json.js';

/**
 * The claims of a JWT (RFC 7519 §7.2 steps 1–7, payload only: no signature check, which OpenID
 * Connect Core §3.1.3.7 allows for an id_token received straight from the token endpoint over TLS).
 * Undefined when the input is not a JWT whose payload is a JSON object.
 */
export function decodeJwtClaims(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  const payload = parts[1];
  if (parts.length !== 3 || payload === undefined || !/^[A-Za-z0-9_-]+$/.test(payload)) return undefined;
  const claims = parseJson(Buffer.from(payload, 'base64url').toString('utf8'));
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
  return claims as Record<string, unknown>;
}

/**
 * The id_token's claims, checked against the `nonce` the authorization request carried (OpenID
 * Connect Core §3.1.3.7 #11). A nonce claim absent from the id_token is accepted: state and PKCE
 * already bind the code to this sign-in; a different one means the id_token belongs to another
 * sign-in (`consent_failed`). Undefined without an id_token, or for one that is not a JWT (when no
 * nonce is to be checked).
 */
export function idTokenClaims(
  idToken: string | undefined,
  nonce: string | undefined,
  connectionId: string,
): Record<string, unknown> | undefined {
  if (!idToken) return undefined;
  const claims = decodeJwtClaims(idToken);
  if (nonce !== undefined && (!claims || (claims.nonce !== undefined && claims.nonce !== nonce))) {
    throw new BrokerError(
      'consent_failed',
      `The id_token does not belong to this sign-in (nonce mismatch). Start again at ${startPath(connectionId)}.`,
      { connectionId },
    );
  }
  return claims;
}

/** The first claim that is a non-empty string (OpenID Connect Core §5.1: most claims are optional). */
export function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string' && v.length > 0);
}

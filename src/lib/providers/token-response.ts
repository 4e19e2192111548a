import { z } from 'zod';
import { BrokerError } from '../errors.js';
import { classifyEntraError, DEFAULT_RETRY_AFTER_S } from './entra-errors.js';
import type { TokenSet } from './provider.js';

/**
 * The "process" half of every token request (build and send live in the dialects and http.ts):
 * recorded bodies go in, a `TokenSet` or a classified `BrokerError` comes out, no server needed.
 */

/**
 * Lifetime assumed when a provider sends neither `expires_in` nor `expires_on`. RFC 6749 §5.1 leaves
 * the default to the provider's documentation; an hour is what Entra, ACS and most others use.
 */
export const DEFAULT_EXPIRES_IN_S = 3600;

/** RFC 6749 §5.2 error body, with Entra's `error_codes` folded into one AADSTS number. */
export interface OAuthErrorBody {
  error: string;
  /** Kept for classification only: it can echo request data, so it is never shown or logged. */
  errorDescription?: string;
  aadsts?: number;
}

/** A token endpoint answer that is not a token set, as handed to a classifier. */
export interface TokenEndpointFailure {
  status: number;
  /** Absent when the body was not an RFC 6749 §5.2 error (an HTML page, nothing at all). */
  oauthError?: OAuthErrorBody;
  /** The provider's `Retry-After`, whole seconds. */
  retryAfter?: number;
}

export type FailureClassifier = (failure: TokenEndpointFailure) => BrokerError;

// ACS sends every number as a string ("3599"); anything else that is not a whole count of seconds
// is treated as absent rather than failing a response that carries a good access token.
const seconds = z.union([
  z.number().nonnegative().transform(Math.floor),
  z
    .string()
    .regex(/^\d{1,15}$/)
    .transform(Number),
]);
const optionalSeconds = seconds.optional().catch(undefined);
const optionalText = z.string().optional().catch(undefined);

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: optionalText,
  expires_in: optionalSeconds,
  expires_on: optionalSeconds,
  scope: optionalText,
  // Strict on purpose: silently dropping a rotated refresh token would lose the grant.
  refresh_token: z.string().optional(),
  id_token: optionalText,
  refresh_token_expires_in: optionalSeconds,
});

const errorBodySchema = z.object({
  error: z.string().min(1),
  error_description: optionalText,
  error_codes: z.array(z.number().int()).optional().catch(undefined),
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Parses an RFC 6749 §5.2 error body; the AADSTS number comes from Entra's `error_codes[0]`, else
 * from `AADSTS\d+` in `error_description`. Undefined when the body is not such an object.
 */
export function parseOAuthError(bodyText: string): OAuthErrorBody | undefined {
  const parsed = errorBodySchema.safeParse(parseJson(bodyText));
  if (!parsed.success) return undefined;
  const { error, error_description: errorDescription, error_codes: codes } = parsed.data;
  const fromDescription = errorDescription?.match(/AADSTS(\d+)/)?.[1];
  const aadsts = codes?.[0] ?? (fromDescription === undefined ? undefined : Number(fromDescription));
  return { error, errorDescription, aadsts };
}

/**
 * RFC 9110 §10.2.3 `Retry-After`: delay-seconds or an HTTP date (measured against `now`, epoch ms),
 * as whole seconds; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  // An HTTP date always names a weekday or month; Date.parse alone would read "-5" as a year.
  const date = /[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function mediaType(headers: Headers): string {
  return headers.get('content-type')?.split(';')[0]?.trim() || 'no content type';
}

/**
 * RFC 6749 §5.1 (successful response) and §5.2 (error response): turns a token endpoint's answer
 * into a `TokenSet`, or throws the `BrokerError` that `classify` makes of it. `now` (epoch ms) turns
 * an `expires_on` into a lifetime when `expires_in` is missing. The body is never quoted in an error:
 * a page from a proxy may echo the request, and the request carried a code or token.
 */
export function parseTokenResponse(
  status: number,
  headers: Headers,
  bodyText: string,
  now: number,
  classify: FailureClassifier = classifyEntraError,
): TokenSet {
  const json = parseJson(bodyText);
  if (status < 200 || status > 299) {
    throw classify({
      status,
      oauthError: parseOAuthError(bodyText),
      retryAfter: parseRetryAfter(headers.get('retry-after'), now),
    });
  }
  const parsed = tokenResponseSchema.safeParse(json);
  if (!parsed.success) {
    // Some providers answer errors with 200; those are still errors, not outages.
    const oauthError = parseOAuthError(bodyText);
    if (oauthError) throw classify({ status, oauthError });
    throw new BrokerError(
      'upstream_unavailable',
      `The provider's answer was not a token response (HTTP ${status}, ${mediaType(headers)}); ` +
        'a proxy or an outage may be in the way. Try again later.',
      { retryAfter: DEFAULT_RETRY_AFTER_S, providerError: { error: 'invalid_token_response', status } },
    );
  }
  const body = parsed.data;
  const expiresIn =
    body.expires_in ??
    (body.expires_on === undefined
      ? DEFAULT_EXPIRES_IN_S
      : Math.max(0, body.expires_on - Math.floor(now / 1000)));
  const tokenType = body.token_type?.toLowerCase() === 'bearer' ? 'Bearer' : body.token_type || 'Bearer';
  return {
    accessToken: body.access_token,
    tokenType,
    expiresIn,
    scope: body.scope || undefined,
    refreshToken: body.refresh_token || undefined,
    idToken: body.id_token || undefined,
    refreshTokenExpiresIn: body.refresh_token_expires_in,
  };
}

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

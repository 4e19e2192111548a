import * as z from 'zod';
import { BrokerError } from '../errors.js';
import { DEFAULT_RETRY_AFTER_S, parseRetryAfter } from '../retry-after.js';
import { optionalSeconds, optionalText, parseJson } from './json.js';
import type {
  FailureClassifier,
  OAuthErrorBody,
  ProviderResponse,
  TokenEndpointFailure,
  TokenSet,
} from './types.js';

/**
 * The "process" half of every token request (build in request.ts, send in http.ts): recorded
 * bodies go in, a `TokenSet` or the `BrokerError` the dialect's classifier makes comes out, no
 * server needed.
 */

/**
 * Lifetime assumed when a provider sends neither `expires_in` nor `expires_on`. RFC 6749 §5.1 leaves
 * the default to the provider's documentation; an hour is what Entra, ACS and most others use.
 */
export const DEFAULT_EXPIRES_IN_S = 3600;

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

/** AADSTS numbers have at most 9 digits (docs/design.md, "Hostile input"); a longer run is none. */
const AADSTS_DIGITS = 9;
const AADSTS_IN_TEXT = /AADSTS(\d+)/;

/** The AADSTS number named in a text (`AADSTS700082: …`), if it has 1–9 digits. */
export function aadstsIn(text: string | undefined): number | undefined {
  const digits = text === undefined ? undefined : AADSTS_IN_TEXT.exec(text)?.[1];
  return digits !== undefined && digits.length <= AADSTS_DIGITS ? Number(digits) : undefined;
}

function isAadsts(n: number | undefined): n is number {
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 && String(n).length <= AADSTS_DIGITS;
}

/** RFC 6749 §4.1.2.1 / §5.2: `error` is 1*( %x20-21 / %x23-5B / %x5D-7E ); we also cap it at 64. */
const OAUTH_ERROR = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

/** An `error` value fit to show, or `invalid_error` for one outside RFC 6749's charset or 64 characters. */
export function oauthErrorCode(value: string): string {
  return OAUTH_ERROR.test(value) ? value : 'invalid_error';
}

/**
 * Parses an RFC 6749 §5.2 error body; the AADSTS number comes from Entra's `error_codes[0]`, else
 * from `AADSTS\d+` in `error_description` (at most 9 digits either way). Undefined when the body is
 * not such an object.
 */
export function parseOAuthError(bodyText: string): OAuthErrorBody | undefined {
  const parsed = errorBodySchema.safeParse(parseJson(bodyText));
  if (!parsed.success) return undefined;
  const { error, error_description: errorDescription, error_codes: codes } = parsed.data;
  const fromCodes = codes?.[0];
  const aadsts = isAadsts(fromCodes) ? fromCodes : aadstsIn(errorDescription);
  return { error, errorDescription, aadsts };
}

function mediaType(headers: Headers): string {
  return headers.get('content-type')?.split(';')[0]?.trim() || 'no content type';
}

/** What a classifier is handed for an answer with an error status (RFC 6749 §5.2). */
function failureOf({ status, headers, bodyText }: ProviderResponse, now: number): TokenEndpointFailure {
  return {
    status,
    oauthError: parseOAuthError(bodyText),
    retryAfter: parseRetryAfter(headers.get('retry-after'), now),
  };
}

/**
 * The body of a 2xx answer as `schema` reads it, undefined when it does not fit; any other status
 * is an error response (RFC 6749 §5.2) or an outage, thrown as `classify` makes it.
 */
export function successBody<T>(
  response: ProviderResponse,
  now: number,
  classify: FailureClassifier,
  schema: z.ZodType<T>,
): T | undefined {
  if (response.status < 200 || response.status > 299) throw classify(failureOf(response, now));
  const parsed = schema.safeParse(parseJson(response.bodyText));
  return parsed.success ? parsed.data : undefined;
}

/**
 * A success status whose body is not the promised `what`: an RFC 6749 §5.2 error sent with 200 is
 * still classified (some providers do that; those are errors, not outages); anything else is an
 * outage, reported without quoting the body (a page from a proxy may echo the request, and the
 * request carried a code or token).
 */
export function unexpectedBody(
  what: 'token' | 'device_authorization',
  { status, headers, bodyText }: ProviderResponse,
  classify: FailureClassifier,
): BrokerError {
  const oauthError = parseOAuthError(bodyText);
  if (oauthError) return classify({ status, oauthError });
  return new BrokerError(
    'upstream_unavailable',
    `The provider's answer was not a ${what.replace('_', ' ')} response (HTTP ${status}, ${mediaType(headers)}); ` +
      'a proxy or an outage may be in the way. Try again later.',
    { retryAfter: DEFAULT_RETRY_AFTER_S, providerError: { error: `invalid_${what}_response`, status } },
  );
}

/**
 * RFC 6749 §5.1 (successful response) and §5.2 (error response): turns a token endpoint's answer
 * into a `TokenSet`, or throws the `BrokerError` that `classify` makes of it. `now` (epoch ms) turns
 * an `expires_on` into a lifetime when `expires_in` is missing. The body is never quoted in an error.
 */
export function processTokenResponse(
  response: ProviderResponse,
  now: number,
  classify: FailureClassifier,
): TokenSet {
  const body = successBody(response, now, classify, tokenResponseSchema);
  if (!body) throw unexpectedBody('token', response, classify);
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

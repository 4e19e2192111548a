import type { BrokerError, ProviderErrorInfo } from '../errors.js';

/** One normalized token response, whatever the dialect (numbers sent as strings already converted). */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  /** Seconds the access token lives, from the response's `expires_in` (or `expires_on`). */
  expiresIn: number;
  /** Space-separated scopes the provider granted, when it said. */
  scope?: string;
  refreshToken?: string;
  idToken?: string;
  /** Seconds the refresh token lives, when the provider says (`refresh_token_expires_in`). */
  refreshTokenExpiresIn?: number;
}

/** RFC 8628 §3.2 device authorization response, normalized. */
export interface DeviceAuthorization {
  /** Secret: redeemed at the token endpoint; never shown, logged or sent to a browser unsealed. */
  deviceCode: string;
  /** What the person types at `verificationUri`. */
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** Seconds the device code lives. */
  expiresIn: number;
  /** Seconds to wait between polls (RFC 8628 default 5). */
  interval: number;
  /** The provider's own instruction for the person (Entra: "To sign in, use a web browser…"). */
  message?: string;
}

/**
 * One RFC 8628 §3.4–3.5 poll of the token endpoint. The device errors the spec makes part of the
 * flow are results, not errors; everything else is thrown as a classified `BrokerError`.
 */
export type DevicePollResult =
  | { status: 'pending' }
  | { status: 'slow_down' }
  | { status: 'declined'; providerError: ProviderErrorInfo }
  | { status: 'expired'; providerError: ProviderErrorInfo }
  | { status: 'bad_code'; providerError: ProviderErrorInfo }
  | { status: 'tokens'; tokens: TokenSet };

/** What the provider answered (`send`); the body is read in full within the same timeout. */
export interface ProviderResponse {
  status: number;
  headers: Headers;
  bodyText: string;
}

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

/** A dialect's reading of a failure (its error table in front of RFC 6749's): always passed in. */
export type FailureClassifier = (failure: TokenEndpointFailure) => BrokerError;

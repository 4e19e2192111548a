import * as z from 'zod';
import type { ProviderErrorInfo } from '../errors.js';
import { providerErrorOf } from './classify.js';
import { optionalNonEmpty, optionalSeconds, seconds } from './json.js';
import { parseOAuthError, processTokenResponse, successBody, unexpectedBody } from './response.js';
import type { DeviceAuthorization, DevicePollResult, FailureClassifier, ProviderResponse } from './types.js';

/**
 * The "process" half of the device authorization grant (RFC 8628), shared by every dialect that
 * offers it: recorded bodies in, a normalized `DeviceAuthorization` or `DevicePollResult` out.
 */

/** RFC 8628 §3.2: the interval a client uses when the provider names none. */
export const DEFAULT_DEVICE_INTERVAL_S = 5;
/** RFC 8628 §3.5: every `slow_down` adds this much to the interval, for good. */
export const SLOW_DOWN_STEP_S = 5;

// The verification URI becomes a link on a page: only http(s), never `javascript:` or the like.
const webUrl = z.string().regex(/^https?:\/\/[^\s]+$/i);

const deviceAuthorizationSchema = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1).max(64),
  verification_uri: webUrl.optional(),
  // Entra's v1 endpoint and Google spell it with an L.
  verification_url: webUrl.optional(),
  verification_uri_complete: webUrl.optional().catch(undefined),
  expires_in: seconds,
  interval: optionalSeconds,
  message: optionalNonEmpty,
});

/**
 * RFC 8628 §3.2: the device authorization response, or the `BrokerError` `classify` makes of an
 * error answer. Neither the device code nor the body is ever quoted in an error.
 */
export function processDeviceAuthorizationResponse(
  response: ProviderResponse,
  now: number,
  classify: FailureClassifier,
): DeviceAuthorization {
  const body = successBody(response, now, classify, deviceAuthorizationSchema);
  const verificationUri = body?.verification_uri ?? body?.verification_url;
  if (!body || verificationUri === undefined)
    throw unexpectedBody('device_authorization', response, classify);
  const authorization: DeviceAuthorization = {
    deviceCode: body.device_code,
    userCode: body.user_code,
    verificationUri,
    expiresIn: body.expires_in,
    interval: Math.max(1, body.interval ?? DEFAULT_DEVICE_INTERVAL_S),
  };
  if (body.verification_uri_complete) authorization.verificationUriComplete = body.verification_uri_complete;
  if (body.message) authorization.message = body.message;
  return authorization;
}

/**
 * RFC 8628 §3.5: one poll's answer. `authorization_pending` and `slow_down` keep the attempt going;
 * `authorization_declined` (Entra) or `access_denied` (RFC), `expired_token` and
 * `bad_verification_code` end it; tokens finish it. Any other answer is thrown as `classify` says.
 */
export function processDevicePollResponse(
  response: ProviderResponse,
  now: number,
  classify: FailureClassifier,
): DevicePollResult {
  const { status } = response;
  // Some providers answer poll errors with 200 (GitHub); a token response never carries `error`.
  if (status < 500 && status !== 429) {
    const oauthError = parseOAuthError(response.bodyText);
    const providerError: ProviderErrorInfo = providerErrorOf({ status, oauthError });
    switch (oauthError?.error) {
      case 'authorization_pending':
        return { status: 'pending' };
      case 'slow_down':
        return { status: 'slow_down' };
      case 'authorization_declined':
      case 'access_denied':
        return { status: 'declined', providerError };
      case 'expired_token':
        return { status: 'expired', providerError };
      case 'bad_verification_code':
        return { status: 'bad_code', providerError };
    }
  }
  return { status: 'tokens', tokens: processTokenResponse(response, now, classify) };
}

import { parseDeviceAuthorizationResponse, parseDevicePollResponse } from './device.js';
import { type HttpDeps, send } from './http.js';
import type { OAuthRequest } from './request.js';
import { parseTokenResponse } from './response.js';
import type { DeviceAuthorization, DevicePollResult, FailureClassifier, TokenSet } from './types.js';

/**
 * Build → send → process, once for every dialect: a request from request.ts goes out through
 * `send` (retries, timeouts, never repeating a redemption), the answer is processed with the
 * dialect's own classifier. There is no default classifier: what an error means is the dialect's.
 */

type Process<T> = (
  status: number,
  headers: Headers,
  bodyText: string,
  now: number,
  classify: FailureClassifier,
) => T;

async function exchange<T>(
  deps: HttpDeps,
  request: OAuthRequest,
  process: Process<T>,
  classify: FailureClassifier,
): Promise<T> {
  const response = await send(deps, request);
  return process(response.status, response.headers, response.bodyText, deps.clock.now(), classify);
}

/** RFC 6749 §4.1.3, §6 (or any grant): a token request sent, its §5.1/§5.2 answer processed. */
export function redeem(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<TokenSet> {
  return exchange(deps, request, parseTokenResponse, classify);
}

/** RFC 8628 §3.1–3.2: a device authorization request sent, its answer processed. */
export function authorizeDevice(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<DeviceAuthorization> {
  return exchange(deps, request, parseDeviceAuthorizationResponse, classify);
}

/** RFC 8628 §3.4–3.5: one poll sent, its answer processed. */
export function pollDevice(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<DevicePollResult> {
  return exchange(deps, request, parseDevicePollResponse, classify);
}

import { processDeviceAuthorizationResponse, processDevicePollResponse } from './device.js';
import { type HttpDeps, send } from './http.js';
import type { OAuthRequest } from './request.js';
import { processTokenResponse } from './response.js';
import type {
  DeviceAuthorization,
  DevicePollResult,
  FailureClassifier,
  ProviderResponse,
  TokenSet,
} from './types.js';

/**
 * Build → send → process, once for every dialect: a request from request.ts goes out through
 * `send` (retries, timeouts, never repeating a redemption), the answer is processed with the
 * dialect's own classifier. There is no default classifier: what an error means is the dialect's.
 */

type Process<T> = (response: ProviderResponse, now: number, classify: FailureClassifier) => T;

async function exchange<T>(
  deps: HttpDeps,
  request: OAuthRequest,
  process: Process<T>,
  classify: FailureClassifier,
): Promise<T> {
  return process(await send(deps, request), deps.clock.now(), classify);
}

/** RFC 6749 §4.1.3, §6 (or any grant): a token request sent, its §5.1/§5.2 answer processed. */
export function redeem(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<TokenSet> {
  return exchange(deps, request, processTokenResponse, classify);
}

/** RFC 8628 §3.1–3.2: a device authorization request sent, its answer processed. */
export function authorizeDevice(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<DeviceAuthorization> {
  return exchange(deps, request, processDeviceAuthorizationResponse, classify);
}

/** RFC 8628 §3.4–3.5: one poll sent, its answer processed. */
export function pollDevice(
  deps: HttpDeps,
  request: OAuthRequest,
  classify: FailureClassifier,
): Promise<DevicePollResult> {
  return exchange(deps, request, processDevicePollResponse, classify);
}

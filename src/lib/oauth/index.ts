/**
 * The OAuth 2.0 protocol layer (RFC 6749, 7636, 8414, 8628, OpenID Connect), knowing no dialect:
 * every operation is *build* a request (request.ts, pure) → *send* it (http.ts: the broker's one
 * retry/timeout policy, which never repeats a redemption) → *process* the answer (response.ts,
 * device.ts, pure, with the dialect's classifier passed in), as oauth4webapi splits `xRequest()`
 * from `processXResponse()`; client.ts chains the three. The RFC 6749 error table is here
 * (classify.ts); Entra's AADSTS table and ACS's rules live with their dialects in ../providers.
 *
 * Why not oauth4webapi itself (v3.8.7, read for this layer): it would take over little and change
 * behaviour the broker relies on. Its processors read `response.json()` themselves (no 1 MiB
 * bounded read of our own, no body text for AADSTS numbers from `error_codes`), classify error
 * bodies only for 4xx with `application/json` (Entra and GitHub send errors with 200, proxies HTML),
 * require `token_type` and ignore `expires_on` (ACS), accept `expires_in` via `parseFloat`
 * ("3599abc"), reject `verification_url` (Google, Entra v1), and validate an id_token's `iss`
 * against one issuer (Entra's `common`/`organizations` need its unstable `_expectedIssuer` export), and every JSON body must be labelled `application/json`.
 * Plain http on loopback needs a flag on every call, and retries, timeouts and the never-repeat
 * rule would still be ours, around its `customFetch`. What it would replace here — discovery,
 * client_secret_basic/post, PKCE parameters, form building — is about 150 lines already tested.
 */

export type { OAuthClassifyContext } from './classify.js';
export { classifyOAuthError, DEFAULT_RETRY_AFTER_S, type FailureRule, failureLabel } from './classify.js';
export { authorizeDevice, pollDevice, redeem } from './client.js';
export {
  DEFAULT_DEVICE_INTERVAL_S,
  processDeviceAuthorizationResponse,
  processDevicePollResponse,
  SLOW_DOWN_STEP_S,
} from './device.js';
export {
  cachedDiscovery,
  discoverProvider,
  discoveryUrls,
  type ProviderMetadata,
  parseProviderMetadata,
} from './discovery.js';
export { type HttpDeps, jsonBody, send } from './http.js';
export { decodeJwtClaims, firstString, idTokenClaims } from './id-token.js';
export {
  authorizationUrl,
  type ClientAuthMethod,
  chooseClientAuthMethod,
  clientAuthentication,
  DEVICE_CODE_GRANT,
  deviceAuthorizationRequest,
  devicePollRequest,
  getRequest,
  mergeScopes,
  type OAuthRequest,
  tokenRequest,
} from './request.js';
export { DEFAULT_EXPIRES_IN_S, parseOAuthError, parseRetryAfter, processTokenResponse } from './response.js';
export type * from './types.js';

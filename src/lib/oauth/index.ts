/**
 * The OAuth 2.0 protocol layer (RFC 6749, 7636, 8414, 8628, OpenID Connect), knowing no dialect:
 * every operation is *build* a request (request.ts, pure) → *send* it (http.ts: the broker's one
 * retry/timeout policy, which never repeats a redemption) → *process* the answer (response.ts,
 * device.ts, pure, with the dialect's classifier passed in), as oauth4webapi splits `xRequest()`
 * from `processXResponse()`; client.ts chains the three. The RFC 6749 error table is here
 * (classify.ts); Entra's AADSTS table and ACS's rules live with their dialects in ../providers.
 *
 * Why not oauth4webapi itself (v3.8.7, read for this layer): it would replace little and break
 * behaviour the broker relies on. Its processors are strict where the broker must be lenient:
 * they require `token_type`, ignore `expires_on` (ACS), take `expires_in` through `parseFloat`
 * ("3599abc" passes, where ours wants digits), refuse `verification_url` (Google, Entra v1) and any
 * JSON not labelled `application/json`, and read an error body only for 4xx (GitHub answers device
 * polls with 200). An id_token from Entra's `common`/`organizations` fails its `iss` check unless
 * one uses its underscored `_expectedIssuer` export. Plain http on loopback needs a flag on every
 * call. The retries, timeouts, never-repeat rule and bounded read would stay ours (wrapped in its
 * `customFetch`), and its errors would still have to be mapped to the dialects' classifiers. What
 * it would take over — discovery, client_secret_basic/post, authorization URL and form building —
 * is about 200 lines here, already tested against oidc-provider.
 */

export { parseRetryAfter } from '../retry-after.js';
export type { OAuthClassifyContext } from './classify.js';
export {
  applyContext,
  classifyOAuthError,
  DEFAULT_RETRY_AFTER_S,
  failureError,
  failureLabel,
  failureRow,
  failureRowOf,
  OAUTH_ERRORS,
  providerErrorOf,
  statusRow,
  UNKNOWN_ROW,
} from './classify.js';
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
export { type HttpDeps, jsonBody, MAX_RESPONSE_BYTES, send } from './http.js';
export { decodeJwtClaims, firstString, idTokenClaims } from './id-token.js';
export {
  authorizationUrl,
  CLIENT_CREDENTIALS_GRANT,
  type ClientAuth,
  type ClientAuthMethod,
  chooseClientAuthMethod,
  clientAssertionAuthentication,
  clientAuthentication,
  clientCredentialsRequest,
  DEVICE_CODE_GRANT,
  deviceAuthorizationRequest,
  devicePollRequest,
  getRequest,
  JWT_BEARER_ASSERTION,
  mergeScopes,
  type OAuthRequest,
  tokenRequest,
} from './request.js';
export {
  aadstsIn,
  DEFAULT_EXPIRES_IN_S,
  oauthErrorCode,
  parseOAuthError,
  processTokenResponse,
} from './response.js';
export type * from './types.js';

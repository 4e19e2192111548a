import { BrokerError } from '../errors.js';

/**
 * The "build" half of every protocol operation: pure functions from endpoint and parameters to an
 * `OAuthRequest`, which `send` (http.ts) puts on the wire. Nothing here does I/O, so a dialect's
 * requests are testable without a server.
 */

/** One request to a provider, as `send` takes it. */
export interface OAuthRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  /** The `application/x-www-form-urlencoded` body of a POST (RFC 6749 Appendix B). */
  form?: Record<string, string>;
  /**
   * The request redeems a one-time grant (a refresh token, an authorization code, a device code).
   * `send` then never repeats it once it may have reached the provider: after a timeout, a 504, or
   * a connection that broke mid-request the provider may already have redeemed it and issued tokens
   * we never saw. Presenting the same refresh token again is exactly what rotating providers with
   * reuse detection treat as theft: they revoke the whole grant (RFC 9700 §4.14.2; for codes
   * RFC 6749 §4.1.2 asks the same). Handing the outage to the caller instead keeps a maybe-lost
   * token from becoming a certainly-dead grant, and the caller's next attempt comes seconds later,
   * through the lock.
   */
  redeemsGrant: boolean;
  /** Sent exactly once, not even repeated after a 429 or 503 (a device poll: see `devicePollRequest`). */
  once?: boolean;
  /** Named in log lines and errors. */
  connectionId?: string;
}

/**
 * RFC 6749 §2.3.1 client authentication at the token endpoint; `none` is a public client (§2.1);
 * `private_key_jwt` a signed client assertion (RFC 7523 §2.2, OpenID Connect Core §9).
 */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/** RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** What client authentication adds to a request: form fields, or an `Authorization` header. */
export interface ClientAuth {
  form: Record<string, string>;
  headers: Record<string, string>;
}

/** `application/x-www-form-urlencoded` of one value, as RFC 6749 §2.3.1 asks before Basic encoding. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * RFC 6749 §2.3.1: `client_secret_basic` (id and secret form-encoded, then Basic), or
 * `client_secret_post` (both in the body); `none` sends the `client_id` alone (RFC 6749 §2.1,
 * RFC 8628 §3.1). The first two need the secret: asking for them without one is a bug, not a
 * public client.
 */
export function clientAuthentication(
  method: ClientAuthMethod,
  clientId: string,
  secret?: string,
): ClientAuth {
  if (method === 'none') return { form: { client_id: clientId }, headers: {} };
  if (method === 'private_key_jwt')
    throw new TypeError('private_key_jwt needs clientAssertionAuthentication');
  if (secret === undefined) throw new TypeError(`${method} needs the client secret`);
  if (method === 'client_secret_post')
    return { form: { client_id: clientId, client_secret: secret }, headers: {} };
  const basic = Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
  return { form: {}, headers: { authorization: `Basic ${basic}` } };
}

/**
 * RFC 7521 §4.2 / RFC 7523 §2.2: the client authenticates with a JWT (signed by its own key, or a
 * federated token such as a managed identity's) in the body, with its `client_id`.
 */
export function clientAssertionAuthentication(clientId: string, assertion: string): ClientAuth {
  return {
    form: { client_id: clientId, client_assertion_type: JWT_BEARER_ASSERTION, client_assertion: assertion },
    headers: {},
  };
}

/**
 * RFC 6749 §2.3.1: the configured method; a certificate credential signs a `private_key_jwt`; else the first the provider supports of
 * `client_secret_basic` (every server must support it) and `client_secret_post`; a public client
 * (no credential) authenticates with `none` (its `client_id` alone, RFC 6749 §2.1).
 */
export function chooseClientAuthMethod(
  client: { credential?: { type: string }; tokenEndpointAuthMethod?: ClientAuthMethod; id?: string },
  supported: readonly string[] | undefined,
): ClientAuthMethod {
  if (client.credential === undefined) return 'none';
  if (client.tokenEndpointAuthMethod) return client.tokenEndpointAuthMethod;
  if (client.credential.type === 'certificate') return 'private_key_jwt';
  if (!supported || supported.length === 0 || supported.includes('client_secret_basic')) {
    return 'client_secret_basic';
  }
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  throw new BrokerError(
    'client_misconfigured',
    `The provider accepts only ${supported.join(', ')} at its token endpoint; the broker authenticates with a client ` +
      'secret (client_secret_basic or client_secret_post). Allow one of those for the client.',
    { connectionId: client.id },
  );
}

interface PostOptions {
  auth?: ClientAuth;
  connectionId?: string;
}

/** A form POST with client authentication applied; its fields first, then the client's. */
function formPost(
  endpoint: string,
  params: Record<string, string>,
  options: PostOptions & Pick<OAuthRequest, 'redeemsGrant' | 'once'>,
): OAuthRequest {
  const { auth, connectionId, redeemsGrant, once } = options;
  const request: OAuthRequest = {
    method: 'POST',
    url: endpoint,
    headers: { ...auth?.headers },
    form: { ...params, ...auth?.form },
    redeemsGrant,
    connectionId,
  };
  if (once) request.once = true;
  return request;
}

type FormRequestBuilder = (
  endpoint: string,
  params: Record<string, string>,
  options?: PostOptions,
) => OAuthRequest;

const formRequest =
  (redeemsGrant: boolean): FormRequestBuilder =>
  (endpoint, params, options = {}) =>
    formPost(endpoint, params, { ...options, redeemsGrant });

/**
 * RFC 6749 §4.1.3 (authorization code), §6 (refresh token) and any other grant redeemed at the
 * token endpoint: `params` carries `grant_type` and the grant. Codes and refresh tokens are
 * single-use grants (rotation with reuse detection), so the request is marked `redeemsGrant`.
 */
export const tokenRequest = formRequest(true);

/** RFC 8628 §3.1: asks for a device code and a user code. Repeating this request is harmless. */
export const deviceAuthorizationRequest = formRequest(false);

/** RFC 8628 §3.4 `grant_type`. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * RFC 8628 §3.4: one token request with the device code. Sent once, not even repeated after a 429
 * or 503: a repeat would be a poll sooner than the interval, and the device code is a grant that
 * may already have been redeemed.
 */
export function devicePollRequest(
  endpoint: string,
  deviceCode: string,
  options: PostOptions = {},
): OAuthRequest {
  const params = { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode };
  return formPost(endpoint, params, { ...options, redeemsGrant: true, once: true });
}

/** RFC 6749 §4.4.2 `grant_type`. */
export const CLIENT_CREDENTIALS_GRANT = 'client_credentials';

/**
 * RFC 6749 §4.4.2: an app-only token for `scope` (Entra: one `{resource}/.default`), the client
 * authenticated as at the token endpoint. No grant is redeemed, so `send` may repeat it like any
 * idempotent request; a client assertion (certificate, managed identity) stays valid for minutes.
 */
export function clientCredentialsRequest(
  endpoint: string,
  scope: string | undefined,
  options: PostOptions = {},
): OAuthRequest {
  const params: Record<string, string> = { grant_type: CLIENT_CREDENTIALS_GRANT };
  if (scope !== undefined && scope !== '') params.scope = scope;
  return formPost(endpoint, params, { ...options, redeemsGrant: false });
}

/** A GET of a JSON document (metadata, UserInfo, an API's answer). Repeating it is harmless. */
export function getRequest(
  url: string,
  options: { headers?: Record<string, string>; connectionId?: string } = {},
): OAuthRequest {
  return {
    method: 'GET',
    url,
    headers: { ...options.headers },
    redeemsGrant: false,
    connectionId: options.connectionId,
  };
}

/** RFC 6749 §4.1.1: the authorization endpoint with the request's parameters in its query. */
export function authorizationUrl(endpoint: string, params: Record<string, string>): string {
  const url = new URL(endpoint);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/**
 * Scopes in first-seen order, each once (RFC 6749 §3.3: a space-delimited set). Scopes are
 * case-sensitive there; a provider that compares them otherwise (Entra) passes its own `key`.
 */
export function mergeScopes(
  lists: readonly (readonly string[])[],
  key: (scope: string) => string = (scope) => scope,
): string[] {
  const seen = new Set<string>();
  return lists.flat().filter((scope) => {
    const k = key(scope);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

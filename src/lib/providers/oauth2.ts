import { credentialSecretName } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import {
  authorizationUrl,
  authorizeDevice,
  cachedDiscovery,
  chooseClientAuthMethod,
  classifyOAuthError,
  clientAuthentication,
  clientCredentialsRequest,
  deviceAuthorizationRequest,
  devicePollRequest,
  firstString,
  getRequest,
  idTokenClaims,
  jsonBody,
  mergeScopes,
  type OAuthClassifyContext,
  type ProviderMetadata,
  pollDevice,
  redeem,
  send,
  type TokenEndpointFailure,
  tokenRequest,
} from '../oauth/index.js';
import { certificateAuthentication } from './certificate.js';
import { requireClientSecret } from './client-secret.js';
import type { AccountInfo, DialectFactory } from './provider.js';

type Endpoints = Omit<ProviderMetadata, 'issuer'>;

/**
 * Any standards-compliant OAuth 2.0 / OpenID Connect provider: endpoints from discovery or
 * configuration, authorization code with PKCE S256, device authorization (RFC 8628) where offered,
 * refresh tokens — including providers that rotate them and revoke the grant on reuse, which the
 * broker's per-connection lock and `send`'s never-repeat-a-grant rule keep from ever tripping.
 */
export const oauth2Dialect: DialectFactory = (configured, deps) => {
  if (configured.provider !== 'oauth2') {
    throw new TypeError(
      `oauth2Dialect cannot serve the ${configured.provider} connection "${configured.id}"`,
    );
  }
  const connection = configured;
  const connectionId = connection.id;
  const defaultScopes =
    connection.flow === 'client_credentials'
      ? [...connection.scopes]
      : mergeScopes([connection.scopes, ['offline_access']]);
  const openid = defaultScopes.includes('openid');
  const secretName = credentialSecretName(connection.credential);
  const explicit: Endpoints = {
    authorizationEndpoint: connection.authorizationEndpoint,
    tokenEndpoint: connection.tokenEndpoint,
    deviceAuthorizationEndpoint: connection.deviceAuthorizationEndpoint,
  };
  const discovered =
    connection.issuer === undefined ? undefined : cachedDiscovery(deps, connection.issuer, connectionId);

  /** The provider's endpoints: discovered once (and again daily), explicit ones winning. */
  async function endpoints(): Promise<Endpoints> {
    if (discovered === undefined) return explicit;
    const merged: Endpoints = { ...(await discovered()) };
    for (const [key, value] of Object.entries(explicit) as [keyof Endpoints, string | undefined][]) {
      if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
    }
    return merged;
  }

  function required(value: string | undefined, what: string, field: string): string {
    if (value !== undefined) return value;
    throw new BrokerError(
      'client_misconfigured',
      `Connection ${connection.id}: the provider publishes no ${what}` +
        `${connection.issuer ? ` in the discovery document of ${connection.issuer}` : ''}. Set "${field}".`,
      { connectionId },
    );
  }

  const classify = (context: OAuthClassifyContext) => (failure: TokenEndpointFailure) =>
    classifyOAuthError(failure, {
      connectionId,
      secretName,
      credentialType: connection.credential?.type ?? 'none',
      clientFields: 'clientId, issuer or endpoints, tokenEndpointAuthMethod, redirectUri and credential',
      ...context,
    });

  const tokenEndpoint = (meta: Endpoints) => required(meta.tokenEndpoint, 'token endpoint', 'tokenEndpoint');

  /** The endpoint `pick` names, and the client authentication (RFC 6749 §2.3.1) the provider accepts. */
  async function prepare(pick: (meta: Endpoints) => string) {
    const meta = await endpoints();
    const endpoint = pick(meta);
    const method = chooseClientAuthMethod(connection, meta.tokenEndpointAuthMethods);
    if (method === 'private_key_jwt') {
      // RFC 7523 §3: the audience is the token endpoint (what the assertion is presented to).
      const auth = await certificateAuthentication(deps, connection, tokenEndpoint(meta));
      return { endpoint, options: { auth, connectionId } };
    }
    const secret = method === 'none' ? undefined : await requireClientSecret(deps, connection);
    return {
      endpoint,
      options: { auth: clientAuthentication(method, connection.clientId, secret), connectionId },
    };
  }

  async function redeemAtTokenEndpoint(params: Record<string, string>, context: OAuthClassifyContext) {
    const { endpoint, options } = await prepare(tokenEndpoint);
    return redeem(deps, tokenRequest(endpoint, params, options), classify(context));
  }

  return {
    defaultScopes,

    /**
     * RFC 6749 §4.1.1 with PKCE S256 (RFC 7636 §4.3). `prompt=consent` because the broker asks for
     * `offline_access`, which OpenID Connect Core §11 grants only with it; a `nonce` when `openid` is
     * asked for (OpenID Connect Core §3.1.2.1).
     */
    async authorizeUrl({ state, nonce, codeChallenge, redirectUri }) {
      const meta = await endpoints();
      const endpoint = required(
        meta.authorizationEndpoint,
        'authorization endpoint',
        'authorizationEndpoint',
      );
      const params: Record<string, string> = {
        response_type: 'code',
        client_id: connection.clientId,
        redirect_uri: redirectUri,
        scope: defaultScopes.join(' '),
        state,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
        prompt: 'consent',
      };
      if (openid) params.nonce = nonce;
      if (connection.expectedAccount) params.login_hint = connection.expectedAccount;
      return authorizationUrl(endpoint, params);
    },

    /** RFC 6749 §4.1.3 with the PKCE `code_verifier` (RFC 7636 §4.5). */
    exchangeCode({ code, codeVerifier, redirectUri }) {
      return redeemAtTokenEndpoint(
        { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier },
        {},
      );
    },

    /**
     * RFC 6749 §6. Without `scopes` the provider grants the original scope; with them, a narrower
     * token from the same grant. A rotating provider answers with a new refresh token either way.
     */
    refresh({ refreshToken, scopes }) {
      const params: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken };
      if (scopes !== undefined) params.scope = scopes.join(' ');
      return redeemAtTokenEndpoint(params, { otherScope: scopes?.join(' ') });
    },

    /** RFC 6749 §4.4.2: an app-only token for the connection's scope (or `scopes`). */
    async clientCredentials(scopes) {
      const { endpoint, options } = await prepare(tokenEndpoint);
      const request = clientCredentialsRequest(endpoint, (scopes ?? connection.scopes).join(' '), options);
      return redeem(deps, request, classify({ otherScope: scopes?.join(' '), appOnly: true }));
    },

    /**
     * RFC 8628 §3.1, with the client authenticated as at the token endpoint (§3.1 asks it of
     * confidential clients). Repeating this request is harmless.
     */
    async startDeviceAuthorization() {
      const { endpoint, options } = await prepare((meta) =>
        required(
          meta.deviceAuthorizationEndpoint,
          'device authorization endpoint (RFC 8628)',
          'deviceAuthorizationEndpoint',
        ),
      );
      const request = deviceAuthorizationRequest(endpoint, { scope: defaultScopes.join(' ') }, options);
      return authorizeDevice(deps, request, classify({}));
    },

    /** RFC 8628 §3.4: one token request with the device code; never repeated (see `devicePollRequest`). */
    async pollDeviceAuthorization(deviceCode) {
      const { endpoint, options } = await prepare(tokenEndpoint);
      return pollDevice(deps, devicePollRequest(endpoint, deviceCode, options), classify({}));
    },

    /**
     * The consenting account: the id_token's `preferred_username` or `email` (OpenID Connect Core
     * §5.1), its nonce checked (`idTokenClaims`); else the UserInfo endpoint's (§5.3: many providers
     * put scope claims only there); else the `sub`. A failing UserInfo call leaves the account to
     * `sub`: consent still succeeds.
     */
    async accountOf(tokens, nonce) {
      const claims = idTokenClaims(tokens.idToken, nonce, connectionId);
      const fromIdToken = accountIn(claims);
      if (fromIdToken.account !== undefined) return fromIdToken;
      const fromUserinfo = accountIn(await userinfo(tokens.accessToken));
      const info: AccountInfo = {};
      const accountId = firstString(claims?.sub, fromUserinfo.accountId);
      const account = fromUserinfo.account ?? accountId;
      if (account !== undefined) info.account = account;
      if (accountId !== undefined) info.accountId = accountId;
      if (fromUserinfo.account !== undefined && fromUserinfo.emailVerified === false)
        info.emailVerified = false;
      return info;
    },
  };

  /**
   * The account named by a set of OpenID Connect claims (§5.1): `preferred_username`, else `email`
   * (flagged unverified unless `email_verified` is true), else `upn`, else the `sub`; `sub` is its id.
   */
  function accountIn(claims: Record<string, unknown> | undefined): AccountInfo {
    const info: AccountInfo = {};
    const sub = firstString(claims?.sub);
    if (sub !== undefined) info.accountId = sub;
    const preferred = firstString(claims?.preferred_username);
    const email = firstString(claims?.email);
    if (preferred !== undefined) info.account = preferred;
    else if (email !== undefined) {
      info.account = email;
      const verified = claims?.email_verified;
      if (verified !== true && verified !== 'true') info.emailVerified = false;
    } else {
      const upn = firstString(claims?.upn);
      if (upn !== undefined) info.account = upn;
    }
    return info;
  }

  /** OpenID Connect Core §5.3; undefined when there is no endpoint or it did not answer with claims. */
  async function userinfo(accessToken: string): Promise<Record<string, unknown> | undefined> {
    if (!openid) return undefined;
    try {
      const meta = await endpoints();
      if (!meta.userinfoEndpoint) return undefined;
      const response = await send(
        deps,
        getRequest(meta.userinfoEndpoint, {
          connectionId,
          headers: { authorization: `Bearer ${accessToken}` },
        }),
      );
      const body = jsonBody(response);
      if (response.status !== 200 || typeof body !== 'object' || body === null || Array.isArray(body)) {
        deps.logger.warn('oauth2.userinfo_failed', { connection: connection.id, status: response.status });
        return undefined;
      }
      return body as Record<string, unknown>;
    } catch (err) {
      deps.logger.warn('oauth2.userinfo_failed', {
        connection: connection.id,
        code: err instanceof BrokerError ? err.code : 'internal_error',
      });
      return undefined;
    }
  }
};

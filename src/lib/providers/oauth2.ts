import type { OAuth2ConnectionConfig } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import { requireClientSecret } from './client-secret.js';
import {
  DEVICE_CODE_GRANT,
  parseDeviceAuthorizationResponse,
  parseDevicePollResponse,
} from './device-authorization.js';
import { discoverProvider, type ProviderMetadata } from './discovery.js';
import { getJson, postForm } from './http.js';
import { classifyOAuthError, type OAuthClassifyContext } from './oauth-errors.js';
import type { AccountInfo, DialectFactory, TokenSet } from './provider.js';
import { decodeJwtClaims, parseTokenResponse, type TokenEndpointFailure } from './token-response.js';

/** Discovery documents change rarely; a day keeps a key rotation or endpoint move from lingering. */
const DISCOVERY_TTL_MS = 24 * 60 * 60 * 1000;

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

type Endpoints = Omit<ProviderMetadata, 'issuer'>;

/** Scopes in first-seen order, each once; OAuth scopes are case-sensitive (RFC 6749 §3.3). */
function mergeScopes(...lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat())];
}

function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string' && v.length > 0);
}

/** `application/x-www-form-urlencoded` of one value, as RFC 6749 §2.3.1 asks before Basic encoding. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * RFC 6749 §2.3.1: the configured method; else the first the provider supports of
 * `client_secret_basic` (every server must support it) and `client_secret_post`; a public client
 * (no credential) authenticates with `none` (its `client_id` alone, RFC 6749 §2.1).
 */
export function chooseClientAuthMethod(
  connection: Pick<OAuth2ConnectionConfig, 'credential' | 'tokenEndpointAuthMethod'> & { id?: string },
  supported: readonly string[] | undefined,
): ClientAuthMethod {
  if (connection.credential === undefined) return 'none';
  if (connection.tokenEndpointAuthMethod) return connection.tokenEndpointAuthMethod;
  if (!supported || supported.length === 0 || supported.includes('client_secret_basic')) {
    return 'client_secret_basic';
  }
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  throw new BrokerError(
    'client_misconfigured',
    `The provider accepts only ${supported.join(', ')} at its token endpoint; the broker authenticates with a client ` +
      'secret (client_secret_basic or client_secret_post). Allow one of those for the client.',
    { connectionId: connection.id },
  );
}

/**
 * Any standards-compliant OAuth 2.0 / OpenID Connect provider: endpoints from discovery or
 * configuration, authorization code with PKCE S256, device authorization (RFC 8628) where offered,
 * refresh tokens — including providers that rotate them and revoke the grant on reuse, which the
 * broker's per-connection lock and http.ts's never-repeat-a-grant rule keep from ever tripping.
 */
export const oauth2Dialect: DialectFactory = (configured, deps) => {
  if (configured.provider !== 'oauth2') {
    throw new TypeError(
      `oauth2Dialect cannot serve the ${configured.provider} connection "${configured.id}"`,
    );
  }
  const connection = configured;
  const defaultScopes = mergeScopes(connection.scopes, ['offline_access']);
  const openid = defaultScopes.includes('openid');
  const secretName = connection.credential?.secretName;
  const explicit: Endpoints = {
    authorizationEndpoint: connection.authorizationEndpoint,
    tokenEndpoint: connection.tokenEndpoint,
    deviceAuthorizationEndpoint: connection.deviceAuthorizationEndpoint,
  };
  let discovered: { until: number; metadata: Promise<ProviderMetadata> } | undefined;

  /** The provider's endpoints: discovered once (and again daily), explicit ones winning. */
  async function endpoints(): Promise<Endpoints> {
    const issuer = connection.issuer;
    if (issuer === undefined) return explicit;
    if (!discovered || discovered.until <= deps.clock.now()) {
      const metadata = discoverProvider(deps, issuer, connection.id);
      discovered = { until: deps.clock.now() + DISCOVERY_TTL_MS, metadata };
      // A failed discovery is not kept: the next request asks again.
      metadata.catch(() => {
        if (discovered?.metadata === metadata) discovered = undefined;
      });
    }
    const metadata = await discovered.metadata;
    const merged: Endpoints = { ...metadata };
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
      { connectionId: connection.id },
    );
  }

  const classify = (context: OAuthClassifyContext) => (failure: TokenEndpointFailure) =>
    classifyOAuthError(failure, {
      connectionId: connection.id,
      secretName,
      clientFields: 'clientId, issuer or endpoints, tokenEndpointAuthMethod, redirectUri and credential',
      ...context,
    });

  /** The request's client authentication (RFC 6749 §2.3.1): form fields or a Basic header. */
  async function authenticate(
    form: Record<string, string>,
    meta: Endpoints,
  ): Promise<{ form: Record<string, string>; headers: Record<string, string> }> {
    const method = chooseClientAuthMethod(connection, meta.tokenEndpointAuthMethods);
    if (method === 'none') return { form: { ...form, client_id: connection.clientId }, headers: {} };
    const secret = await requireClientSecret(deps, connection);
    if (method === 'client_secret_post') {
      return { form: { ...form, client_id: connection.clientId, client_secret: secret }, headers: {} };
    }
    const basic = Buffer.from(`${formEncode(connection.clientId)}:${formEncode(secret)}`).toString('base64');
    return { form, headers: { authorization: `Basic ${basic}` } };
  }

  async function redeem(params: Record<string, string>, context: OAuthClassifyContext): Promise<TokenSet> {
    const meta = await endpoints();
    const tokenEndpoint = required(meta.tokenEndpoint, 'token endpoint', 'tokenEndpoint');
    const { form, headers } = await authenticate(params, meta);
    // Codes and refresh tokens are single-use grants (rotation with reuse detection): never repeated blindly.
    const response = await postForm(deps, tokenEndpoint, form, {
      redeemsGrant: true,
      connectionId: connection.id,
      headers,
    });
    return parseTokenResponse(
      response.status,
      response.headers,
      response.bodyText,
      deps.clock.now(),
      classify(context),
    );
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
      const url = new URL(
        required(meta.authorizationEndpoint, 'authorization endpoint', 'authorizationEndpoint'),
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
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return url.toString();
    },

    /** RFC 6749 §4.1.3 with the PKCE `code_verifier` (RFC 7636 §4.5). */
    exchangeCode({ code, codeVerifier, redirectUri }) {
      return redeem(
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
      return redeem(params, { otherScope: scopes !== undefined });
    },

    /**
     * RFC 8628 §3.1, with the client authenticated as at the token endpoint (§3.1 asks it of
     * confidential clients). Repeating this request is harmless.
     */
    async startDeviceAuthorization() {
      const meta = await endpoints();
      const endpoint = required(
        meta.deviceAuthorizationEndpoint,
        'device authorization endpoint (RFC 8628)',
        'deviceAuthorizationEndpoint',
      );
      const { form, headers } = await authenticate({ scope: defaultScopes.join(' ') }, meta);
      const response = await postForm(deps, endpoint, form, { connectionId: connection.id, headers });
      return parseDeviceAuthorizationResponse(
        response.status,
        response.headers,
        response.bodyText,
        deps.clock.now(),
        classify({}),
      );
    },

    /** RFC 8628 §3.4: one token request with the device code; never retried (see entra.ts). */
    async pollDeviceAuthorization(deviceCode) {
      const meta = await endpoints();
      const tokenEndpoint = required(meta.tokenEndpoint, 'token endpoint', 'tokenEndpoint');
      const { form, headers } = await authenticate(
        { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode },
        meta,
      );
      const response = await postForm({ ...deps, maxRetries: 0 }, tokenEndpoint, form, {
        redeemsGrant: true,
        connectionId: connection.id,
        headers,
      });
      return parseDevicePollResponse(
        response.status,
        response.headers,
        response.bodyText,
        deps.clock.now(),
        classify({}),
      );
    },

    /**
     * The consenting account: the id_token's `preferred_username` or `email` (OpenID Connect Core
     * §5.1); else the UserInfo endpoint's (§5.3: many providers put scope claims only there); else
     * the `sub`. A failing UserInfo call leaves the account to `sub`: consent still succeeds.
     */
    async accountOf(tokens, nonce) {
      const claims = tokens.idToken ? decodeJwtClaims(tokens.idToken) : undefined;
      if (
        tokens.idToken &&
        nonce !== undefined &&
        (!claims || (claims.nonce !== undefined && claims.nonce !== nonce))
      ) {
        throw new BrokerError(
          'consent_failed',
          `The id_token does not belong to this sign-in (nonce mismatch). Start again at /api/start?connection=${connection.id}.`,
          { connectionId: connection.id },
        );
      }
      const named = firstString(claims?.preferred_username, claims?.email, claims?.upn);
      if (named !== undefined) return { account: named };
      const fromUserinfo = await userinfo(tokens.accessToken);
      const account = firstString(
        fromUserinfo?.preferred_username,
        fromUserinfo?.email,
        claims?.sub,
        fromUserinfo?.sub,
      );
      const info: AccountInfo = {};
      if (account !== undefined) info.account = account;
      return info;
    },
  };

  /** OpenID Connect Core §5.3; undefined when there is no endpoint or it did not answer with claims. */
  async function userinfo(accessToken: string): Promise<Record<string, unknown> | undefined> {
    if (!openid) return undefined;
    try {
      const meta = await endpoints();
      if (!meta.userinfoEndpoint) return undefined;
      const response = await getJson(deps, meta.userinfoEndpoint, {
        connectionId: connection.id,
        headers: { authorization: `Bearer ${accessToken}` },
      });
      const body = response.body;
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

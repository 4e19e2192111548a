import { BrokerError } from '../errors.js';
import { requireClientSecret } from './client-secret.js';
import {
  DEVICE_CODE_GRANT,
  parseDeviceAuthorizationResponse,
  parseDevicePollResponse,
} from './device-authorization.js';
import { type ClassifyContext, classifyEntraError } from './entra-errors.js';
import { postForm } from './http.js';
import type { AccountInfo, DialectFactory, TokenSet } from './provider.js';
import { decodeJwtClaims, parseTokenResponse, type TokenEndpointFailure } from './token-response.js';

/** Added to every Entra request (DESIGN.md): a refresh token, and an id_token naming the account. */
const ALWAYS_SCOPES = ['offline_access', 'openid', 'profile'];

/** Scopes in first-seen order, each once; Entra compares scopes case-insensitively. */
function mergeScopes(...lists: readonly (readonly string[])[]): string[] {
  const seen = new Set<string>();
  const merged: string[] = [];
  for (const scope of lists.flat()) {
    const key = scope.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    merged.push(scope);
  }
  return merged;
}

function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string' && v.length > 0);
}

/**
 * The Microsoft identity platform (Entra ID v2 endpoints): authorization code with PKCE, device
 * authorization and refresh token grants, for public clients and confidential clients with a client
 * secret.
 */
export const entraDialect: DialectFactory = (connection, deps) => {
  if (connection.provider !== 'entra') {
    throw new TypeError(`entraDialect cannot serve the ${connection.provider} connection "${connection.id}"`);
  }
  const base = `${connection.authority.replace(/\/+$/, '')}/${connection.tenant}/oauth2/v2.0`;
  const authorizeEndpoint = `${base}/authorize`;
  const tokenEndpoint = `${base}/token`;
  const deviceEndpoint = `${base}/devicecode`;
  const defaultScopes = mergeScopes(connection.scopes, ALWAYS_SCOPES);
  const secretName = connection.credential?.secretName;

  /** RFC 6749 §2.3.1 `client_secret_post`; a public client (§2.1) sends none. */
  async function clientAuthentication(): Promise<Record<string, string>> {
    if (secretName === undefined) return {};
    const secret = await requireClientSecret(deps, connection);
    return { client_secret: secret };
  }

  const classify = (context: ClassifyContext) => (failure: TokenEndpointFailure) =>
    classifyEntraError(failure, { connectionId: connection.id, secretName, ...context });

  async function redeem(params: Record<string, string>, context: ClassifyContext): Promise<TokenSet> {
    const form = { ...params, ...(await clientAuthentication()) };
    // Codes and refresh tokens are single-use grants: http.ts must not repeat them blindly.
    const response = await postForm(deps, tokenEndpoint, form, {
      redeemsGrant: true,
      connectionId: connection.id,
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

    /** RFC 6749 §4.1.1 with PKCE (RFC 7636 §4.3) and an OpenID Connect Core §3.1.2.1 nonce. */
    async authorizeUrl({ state, nonce, codeChallenge, redirectUri }) {
      const url = new URL(authorizeEndpoint);
      const params: Record<string, string> = {
        client_id: connection.clientId,
        response_type: 'code',
        redirect_uri: redirectUri,
        response_mode: 'query',
        scope: defaultScopes.join(' '),
        state,
        nonce,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      };
      // With no expected account, make the person choose: a browser already signed in to another
      // account would otherwise consent for it silently.
      if (connection.expectedAccount) params.login_hint = connection.expectedAccount;
      else params.prompt = 'select_account';
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return url.toString();
    },

    /** RFC 6749 §4.1.3 with the PKCE `code_verifier` (RFC 7636 §4.5). */
    exchangeCode({ code, codeVerifier, redirectUri }) {
      return redeem(
        {
          grant_type: 'authorization_code',
          client_id: connection.clientId,
          code,
          redirect_uri: redirectUri,
          code_verifier: codeVerifier,
          scope: defaultScopes.join(' '),
        },
        {},
      );
    },

    /**
     * RFC 6749 §6. Given `scopes`, Entra mints a token for that other resource from the same grant;
     * `offline_access` keeps a (rotated) refresh token coming back either way.
     */
    refresh({ refreshToken, scopes }) {
      const scope = scopes === undefined ? defaultScopes : mergeScopes(scopes, ['offline_access']);
      return redeem(
        {
          grant_type: 'refresh_token',
          client_id: connection.clientId,
          refresh_token: refreshToken,
          scope: scope.join(' '),
        },
        { otherScope: scopes !== undefined },
      );
    },

    /**
     * RFC 8628 §3.1 at Entra's `/devicecode`: client_id and scope only, as Entra documents it; a
     * confidential client authenticates when it polls. Repeating this request is harmless.
     */
    async startDeviceAuthorization() {
      const response = await postForm(
        deps,
        deviceEndpoint,
        { client_id: connection.clientId, scope: defaultScopes.join(' ') },
        { connectionId: connection.id },
      );
      return parseDeviceAuthorizationResponse(
        response.status,
        response.headers,
        response.bodyText,
        deps.clock.now(),
        classify({}),
      );
    },

    /**
     * RFC 8628 §3.4: one token request with the device code (plus the client secret of a
     * confidential client). Not retried, not even after a 429 or 503: a repeat would be a poll
     * sooner than the interval, and the device code is a grant that may already have been redeemed.
     */
    async pollDeviceAuthorization(deviceCode) {
      const form = {
        grant_type: DEVICE_CODE_GRANT,
        client_id: connection.clientId,
        device_code: deviceCode,
        ...(await clientAuthentication()),
      };
      const response = await postForm({ ...deps, maxRetries: 0 }, tokenEndpoint, form, {
        redeemsGrant: true,
        connectionId: connection.id,
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
     * The consenting account from the id_token (OpenID Connect Core §2, §3.1.3.7 #11 for the nonce).
     * A nonce claim absent from the id_token is accepted: state and PKCE already bind the code to
     * this sign-in; a different one means the id_token belongs to another sign-in.
     */
    async accountOf(tokens, nonce) {
      if (!tokens.idToken) return {};
      const claims = decodeJwtClaims(tokens.idToken);
      if (nonce !== undefined && (!claims || (claims.nonce !== undefined && claims.nonce !== nonce))) {
        throw new BrokerError(
          'consent_failed',
          `The id_token does not belong to this sign-in (nonce mismatch). Start again at /api/start?connection=${connection.id}.`,
          { connectionId: connection.id },
        );
      }
      if (!claims) return {};
      const info: AccountInfo = {};
      const account = firstString(claims.preferred_username, claims.email, claims.upn, claims.unique_name);
      const tenant = firstString(claims.tid);
      if (account !== undefined) info.account = account;
      if (tenant !== undefined) info.tenant = tenant;
      return info;
    },
  };
};

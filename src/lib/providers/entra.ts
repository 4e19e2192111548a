import { credentialSecretName } from '../config/connections.js';
import {
  authorizationUrl,
  authorizeDevice,
  type ClientAuth,
  clientAssertionAuthentication,
  clientAuthentication,
  clientCredentialsRequest,
  deviceAuthorizationRequest,
  devicePollRequest,
  firstString,
  idTokenClaims,
  mergeScopes,
  pollDevice,
  redeem,
  type TokenEndpointFailure,
  tokenRequest,
} from '../oauth/index.js';
import { certificateAuthentication } from './certificate.js';
import { requireClientSecret } from './client-secret.js';
import { type ClassifyContext, classifyEntraError } from './entra-errors.js';
import { tokenExchangeAudience } from './managed-identity.js';
import type { AccountInfo, DialectFactory } from './provider.js';

/** Added to every Entra request (docs/design.md, "Connections"): a refresh token, and an id_token naming the account. */
const ALWAYS_SCOPES = ['offline_access', 'openid', 'profile'];

/** Entra compares scopes case-insensitively. */
const scopeKey = (scope: string) => scope.toLowerCase();

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
  // An app-only connection asks for its `.default` scope alone: no person, so no id_token or refresh token.
  const defaultScopes =
    connection.flow === 'client_credentials'
      ? [...connection.scopes]
      : mergeScopes([connection.scopes, ALWAYS_SCOPES], scopeKey);
  const { credential, authority } = connection;
  const secretName = credentialSecretName(credential);
  const connectionId = connection.id;

  /**
   * RFC 6749 §2.3.1 `client_secret_post`; a public client (§2.1) sends its client_id alone; a
   * certificate or a managed identity sends a JWT client assertion (RFC 7523 §2.2), built afresh
   * for every request (a new `jti`; a managed identity token renewed before it expires).
   */
  async function auth(): Promise<ClientAuth> {
    if (credential === undefined) return clientAuthentication('none', connection.clientId);
    if (credential.type === 'certificate') return certificateAuthentication(deps, connection, tokenEndpoint);
    if (credential.type === 'managedIdentity') {
      if (!deps.managedIdentityToken) throw new TypeError('entraDialect needs managedIdentityToken');
      const audience = tokenExchangeAudience(authority);
      const token = await deps.managedIdentityToken(credential.clientId, audience);
      return clientAssertionAuthentication(connection.clientId, token);
    }
    const secret = await requireClientSecret(deps, connection);
    return clientAuthentication('client_secret_post', connection.clientId, secret);
  }

  const classify = (context: ClassifyContext) => (failure: TokenEndpointFailure) =>
    classifyEntraError(failure, {
      connectionId,
      secretName,
      credentialType: credential?.type ?? 'none',
      ...context,
    });

  return {
    defaultScopes,

    /** RFC 6749 §4.1.1 with PKCE (RFC 7636 §4.3) and an OpenID Connect Core §3.1.2.1 nonce. */
    async authorizeUrl({ state, nonce, codeChallenge, redirectUri }) {
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
      return authorizationUrl(authorizeEndpoint, params);
    },

    /** RFC 6749 §4.1.3 with the PKCE `code_verifier` (RFC 7636 §4.5). */
    async exchangeCode({ code, codeVerifier, redirectUri }) {
      const params = {
        grant_type: 'authorization_code',
        client_id: connection.clientId,
        code,
        redirect_uri: redirectUri,
        code_verifier: codeVerifier,
        scope: defaultScopes.join(' '),
      };
      return redeem(
        deps,
        tokenRequest(tokenEndpoint, params, { auth: await auth(), connectionId }),
        classify({}),
      );
    },

    /**
     * RFC 6749 §6. Given `scopes`, Entra mints a token for that other resource from the same grant;
     * `offline_access` keeps a (rotated) refresh token coming back either way.
     */
    async refresh({ refreshToken, scopes }) {
      const scope =
        scopes === undefined ? defaultScopes : mergeScopes([scopes, ['offline_access']], scopeKey);
      const params = {
        grant_type: 'refresh_token',
        client_id: connection.clientId,
        refresh_token: refreshToken,
        scope: scope.join(' '),
      };
      const request = tokenRequest(tokenEndpoint, params, { auth: await auth(), connectionId });
      return redeem(deps, request, classify({ otherScope: scopes?.join(' ') }));
    },

    /**
     * RFC 6749 §4.4 as Entra's "client credentials flow": `scope` is one `{resource}/.default`
     * (anything else is AADSTS1002012), the app's roles granted by an admin come back in the token.
     */
    async clientCredentials(scopes) {
      const scope = (scopes ?? connection.scopes).join(' ');
      const request = clientCredentialsRequest(tokenEndpoint, scope, { auth: await auth(), connectionId });
      return redeem(deps, request, classify({ otherScope: scopes?.join(' '), appOnly: true }));
    },

    /**
     * RFC 8628 §3.1 at Entra's `/devicecode`: client_id and scope only, as Entra documents it; a
     * confidential client authenticates when it polls. Repeating this request is harmless.
     */
    startDeviceAuthorization() {
      const params = { client_id: connection.clientId, scope: defaultScopes.join(' ') };
      return authorizeDevice(
        deps,
        deviceAuthorizationRequest(deviceEndpoint, params, { connectionId }),
        classify({}),
      );
    },

    /**
     * RFC 8628 §3.4: one token request with the device code (plus the client secret of a
     * confidential client), never repeated (see `devicePollRequest`).
     */
    async pollDeviceAuthorization(deviceCode) {
      const request = devicePollRequest(tokenEndpoint, deviceCode, { auth: await auth(), connectionId });
      return pollDevice(deps, request, classify({}));
    },

    /**
     * The consenting account from the id_token (OpenID Connect Core §2), its nonce checked
     * (`idTokenClaims`).
     */
    async accountOf(tokens, nonce) {
      const claims = idTokenClaims(tokens.idToken, nonce, connectionId);
      if (!claims) return {};
      const info: AccountInfo = {};
      const account = firstString(claims.preferred_username, claims.email, claims.upn, claims.unique_name);
      const tenant = firstString(claims.tid);
      const accountId = firstString(claims.oid);
      if (account !== undefined) info.account = account;
      if (tenant !== undefined) info.tenant = tenant;
      if (accountId !== undefined) info.accountId = accountId;
      return info;
    },
  };
};

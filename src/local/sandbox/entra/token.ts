/**
 * `POST /token`: client authentication, then the three grants the broker uses (authorization_code
 * with PKCE, refresh_token with rotation and a scope for another resource, device_code), each
 * refused with the AADSTS error Entra gives for that mistake.
 */
import { pkceChallenge } from '../../../lib/crypto/pkce.js';
import { safeEqual } from '../../../lib/crypto/tokens.js';
import { clientCredentials } from './app-tokens.js';
import { authenticateAssertion, hasAssertionCredentials } from './client-assertion.js';
import {
  registeredClient,
  type SimulatorClient,
  type SimulatorContext,
  type SimulatorRequest,
} from './context.js';
import { DEVICE_CODE_GRANT } from './device.js';
import { EntraError, foreignGrant, malformedGrant, missingParam } from './errors.js';
import { type Answer, jsonAnswer, parseBasicAuth } from './http.js';
import { splitScopes } from './scopes.js';

export function token(ctx: SimulatorContext, req: SimulatorRequest, tid: string): Answer {
  const grantType = req.form.get('grant_type');
  if (!grantType) throw missingParam('grant_type');
  const client = authenticateClient(ctx, req);
  if (grantType === 'authorization_code') return jsonAnswer(200, redeemCode(ctx, req.form, client));
  if (grantType === 'refresh_token') return jsonAnswer(200, redeemRefreshToken(ctx, req.form, client));
  if (grantType === DEVICE_CODE_GRANT) {
    const deviceCode = req.form.get('device_code');
    if (!deviceCode) throw missingParam('device_code');
    const grant = ctx.devices.poll(deviceCode, client.clientId);
    return jsonAnswer(200, ctx.tokens.issue(grant, grant.scopes, 'first'));
  }
  if (grantType === 'client_credentials') return jsonAnswer(200, clientCredentials(ctx, req, client, tid));
  throw new EntraError('unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
}

/**
 * Secret in the body (client_secret_post) or in Basic auth (client_secret_basic), or a client
 * assertion (client-assertion.ts), as Entra accepts them. An app with only certificates or
 * federated credentials refuses a secret, and one with only a secret refuses an assertion.
 */
function authenticateClient(ctx: SimulatorContext, req: SimulatorRequest): SimulatorClient {
  const basic = parseBasicAuth(req.headers.authorization);
  const clientId = req.form.get('client_id') ?? basic?.id;
  const secret = req.form.get('client_secret') ?? basic?.secret;
  if (!clientId) throw missingParam('client_id');
  const client = registeredClient(ctx, clientId, req.tenant ?? '');
  if (req.form.has('client_assertion')) {
    authenticateAssertion(ctx, req, client);
    return client;
  }
  if (client.secret === undefined && hasAssertionCredentials(client)) {
    if (!secret) {
      const message =
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
      throw new EntraError('invalid_client', 7000218, message, 401);
    }
    const message = `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`;
    throw new EntraError('invalid_client', 7000215, message, 401);
  }
  if (client.secret === undefined) {
    if (!secret) return client;
    const message = "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.";
    throw new EntraError('invalid_client', 700025, message, 401);
  }
  if (!secret) {
    const message =
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
    throw new EntraError('invalid_client', 7000218, message, 401);
  }
  if (!safeEqual(secret, client.secret)) {
    const message = `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`;
    throw new EntraError('invalid_client', 7000215, message, 401);
  }
  if (client.secretExpired) {
    const message = `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`;
    throw new EntraError('invalid_client', 7000222, message, 401);
  }
  return client;
}

function redeemCode(ctx: SimulatorContext, form: URLSearchParams, client: SimulatorClient): object {
  const code = form.get('code');
  if (!code) throw missingParam('code');
  const record = ctx.grants.findCode(code);
  if (!record) throw malformedGrant();
  if (record.grant.clientId !== client.clientId) throw foreignGrant();
  if (record.redeemed) {
    const message =
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.';
    throw new EntraError('invalid_grant', 54005, message);
  }
  if (ctx.now() > record.expiresAt) {
    const message =
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.';
    throw new EntraError('invalid_grant', 70008, message);
  }
  const redirectUri = form.get('redirect_uri') ?? '';
  if (redirectUri !== record.redirectUri) {
    const message = `The reply address '${redirectUri}' does not match the reply address '${record.redirectUri}' provided when requesting Authorization code.`;
    throw new EntraError('invalid_grant', 50011, message);
  }
  if (!safeEqual(pkceChallenge(form.get('code_verifier') ?? ''), record.codeChallenge)) {
    const message =
      'The Code_Verifier does not match the code_challenge supplied in the authorization request.';
    throw new EntraError('invalid_grant', 501481, message);
  }
  record.redeemed = true;
  return ctx.tokens.issue(record.grant, record.grant.scopes, 'first', record.nonce);
}

/**
 * Any refresh token of a live grant redeems, rotated-out ones too: Entra tolerates their reuse for
 * a while, so the broker's one-redemption-at-a-time rule is not something this simulator enforces.
 */
function redeemRefreshToken(ctx: SimulatorContext, form: URLSearchParams, client: SimulatorClient): object {
  const token = form.get('refresh_token');
  if (!token) throw missingParam('refresh_token');
  const record = ctx.grants.findRefreshToken(token);
  if (!record) throw malformedGrant();
  const { grant } = record;
  if (grant.clientId !== client.clientId) throw foreignGrant();
  ctx.grants.checkAlive(grant, record.issuedAt);
  const requested = form.has('scope') ? splitScopes(form.get('scope')) : grant.scopes;
  return ctx.tokens.issue(grant, requested, 'single');
}

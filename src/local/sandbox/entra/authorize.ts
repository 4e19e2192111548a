/**
 * `/authorize`: GET shows the sign-in form; POST is its submit and answers the app through the
 * redirect URI (a code, or an error).
 */
import { randomUUID } from 'node:crypto';
import { registeredClient, type SimulatorContext, type SimulatorRequest } from './context.js';
import { EntraError, entraErrorBody, missingParam } from './errors.js';
import { type Answer, redirectAnswer } from './http.js';
import { accountError, signInPage } from './pages.js';
import { resolveScopes, splitScopes } from './scopes.js';

/** Prefilled when the app sends no `login_hint`, so a newcomer only has to press Sign in. */
export const DEFAULT_ACCOUNT = 'sandbox.user@contoso.com';

/**
 * Client and redirect URI are checked first and their errors thrown (the caller shows a page): an
 * unregistered redirect URI must never receive anything. Every later error goes back to the app.
 */
export function authorize(
  ctx: SimulatorContext,
  req: SimulatorRequest,
  tid: string,
  correlationId: string,
): Answer {
  const submitted = req.method === 'POST';
  const params = submitted ? req.form : req.url.searchParams;
  const tenant = req.tenant ?? '';
  const clientId = params.get('client_id') ?? '';
  const client = registeredClient(ctx, clientId, tenant);
  const redirectUri = params.get('redirect_uri') ?? '';
  if (!client.redirectUris.includes(redirectUri)) {
    const message = `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`;
    throw new EntraError('invalid_request', 50011, message);
  }
  const state = params.get('state');
  let scopes: string[];
  try {
    scopes = validateAuthorize(params);
    // A browser submits the pressed button's name; `action=cancel` is accepted too.
    if (submitted && (params.has('cancel') || params.get('action') === 'cancel')) {
      throw new EntraError('access_denied', 65004, 'User declined to consent to access the app.');
    }
  } catch (err) {
    if (!(err instanceof EntraError)) throw err;
    const { error, error_description, error_uri } = entraErrorBody(err, correlationId, ctx.now());
    return redirectAnswer(redirectUri, { error, error_description, error_uri, state });
  }
  const account = submitted
    ? (params.get('account') ?? '').trim()
    : params.get('login_hint') || DEFAULT_ACCOUNT;
  const error = submitted ? accountError(account) : undefined;
  if (!submitted || error) {
    const action = `${ctx.prefix}/${encodeURIComponent(tenant)}/oauth2/v2.0/authorize`;
    return signInPage({ action, params, clientId, account, error });
  }
  const grant = ctx.grants.add({ clientId, account, tid, scopes });
  const code = ctx.grants.issueCode(grant, {
    redirectUri,
    codeChallenge: params.get('code_challenge') ?? '',
    nonce: params.get('nonce') ?? undefined,
  });
  return redirectAnswer(redirectUri, { code, state, session_state: randomUUID() });
}

/** The request beyond client and redirect URI; its errors go back to the app. Returns the scopes. */
function validateAuthorize(params: URLSearchParams): string[] {
  const responseType = params.get('response_type');
  if (!responseType) throw missingParam('response_type');
  if (responseType !== 'code') {
    const message = `response_type '${responseType}' is not enabled for the application.`;
    throw new EntraError('unsupported_response_type', 700054, message);
  }
  const scopes = splitScopes(params.get('scope'));
  if (scopes.length === 0) throw missingParam('scope');
  resolveScopes(scopes, 'first');
  if (!params.get('code_challenge')) throw missingParam('code_challenge');
  if (params.get('code_challenge_method') !== 'S256') {
    throw new EntraError('invalid_request', 501491, "Only the 'S256' code_challenge_method is accepted.");
  }
  if (params.get('prompt') === 'none') {
    throw new EntraError(
      'login_required',
      50058,
      'A silent sign-in request was sent but no user is signed in.',
    );
  }
  return scopes;
}

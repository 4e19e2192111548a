/** The device flow's two endpoints: `/devicecode` for the app, `/devicelogin` for the person. */
import { registeredClient, type SimulatorContext, type SimulatorRequest } from './context.js';
import { missingParam } from './errors.js';
import { type Answer, jsonAnswer } from './http.js';
import { accountError, deviceDonePage, deviceLoginPage } from './pages.js';
import { resolveScopes, splitScopes } from './scopes.js';

/** `POST /devicecode`: client_id and scope, as Entra documents it; the answer as Entra words it. */
export function deviceAuthorization(ctx: SimulatorContext, req: SimulatorRequest, tid: string): Answer {
  const clientId = req.form.get('client_id');
  if (!clientId) throw missingParam('client_id');
  registeredClient(ctx, clientId, req.tenant ?? '');
  const scopes = splitScopes(req.form.get('scope'));
  if (scopes.length === 0) throw missingParam('scope');
  resolveScopes(scopes, 'first');
  const { deviceCode, userCode } = ctx.devices.start(clientId, tid, scopes);
  const host = req.headers.host ?? '127.0.0.1';
  const verificationUri = `http://${host}${ctx.prefix}/devicelogin`;
  return jsonAnswer(200, {
    user_code: userCode,
    device_code: deviceCode,
    verification_uri: verificationUri,
    expires_in: ctx.devices.timing.lifetimeSec,
    interval: ctx.devices.timing.intervalSec,
    message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
  });
}

/** `/devicelogin`: GET shows the form; its POST must name a pending code, then Decline ends it, Continue signs in. */
export function deviceLogin(ctx: SimulatorContext, req: SimulatorRequest): Answer {
  const action = `${ctx.prefix}/devicelogin`;
  if (req.method === 'GET') return deviceLoginPage(action, req.url.searchParams.get('otc') ?? '');
  const userCode = req.form.get('otc') ?? '';
  const record = ctx.devices.awaitingPerson(userCode);
  if (!record) {
    return deviceLoginPage(action, userCode, "That code didn't work. Check the code and try again.", 400);
  }
  if (req.form.has('decline') || req.form.get('action') === 'decline') {
    ctx.devices.decline(record);
    return deviceDonePage(record.clientId);
  }
  const account = (req.form.get('account') ?? '').trim();
  const error = accountError(account);
  if (error) return deviceLoginPage(action, userCode, error, 400);
  ctx.devices.approve(record, account);
  return deviceDonePage(record.clientId, account);
}

/**
 * `GET /graph/v1.0/me`, the resource a sandbox token is good for: proof that what the broker vends
 * works, answered in Graph's own shapes (the user, or Graph's 401).
 */
import type { SimulatorContext, SimulatorRequest } from './context.js';
import { type Answer, jsonAnswer } from './http.js';
import { GRAPH } from './scopes.js';

/** Only tokens this simulator signed, for Graph, unexpired. */
export function me(ctx: SimulatorContext, req: SimulatorRequest, requestId: string): Answer {
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const claims = token ? ctx.signer.verify(token) : undefined;
  let problem: string | undefined;
  if (!token) problem = 'Access token is empty.';
  else if (!claims) problem = 'Access token validation failure. Invalid signature or malformed token.';
  else if (claims.aud !== GRAPH) problem = 'Access token validation failure. Invalid audience.';
  else if (typeof claims.exp !== 'number' || claims.exp * 1000 <= ctx.now()) {
    problem = 'Lifetime validation failed, the token is expired.';
  }
  if (problem || !claims) {
    const date = new Date(ctx.now()).toISOString().replace(/\.\d+Z$/, '');
    const error = {
      code: 'InvalidAuthenticationToken',
      message: problem,
      innerError: { date, 'request-id': requestId },
    };
    const wwwAuthenticate = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`;
    return jsonAnswer(401, { error }, { 'WWW-Authenticate': wwwAuthenticate });
  }
  const account = String(claims.upn);
  return jsonAnswer(200, {
    '@odata.context': `${GRAPH}/v1.0/$metadata#users/$entity`,
    displayName: String(claims.name),
    userPrincipalName: account,
    mail: account,
    id: String(claims.oid),
  });
}

/**
 * The client credentials grant (RFC 6749 §4.4) for APIs registered in the simulator: a service's own
 * app token for another app (the broker's API), with the app roles assigned to it, in the v1 or v2
 * shape the API asks for — what a managed identity gets from Entra when it calls the broker.
 */
import { randomUUID } from 'node:crypto';
import type { SimulatorClient, SimulatorContext, SimulatorRequest } from './context.js';
import { EntraError, missingParam } from './errors.js';

export function clientCredentials(
  ctx: SimulatorContext,
  req: SimulatorRequest,
  client: SimulatorClient,
  tid: string,
): object {
  if (client.secret === undefined) {
    throw new EntraError(
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      401,
    );
  }
  const scope = req.form.get('scope');
  if (!scope) throw missingParam('scope');
  const resource = /^(.+)\/\.default$/.exec(scope)?.[1];
  const api = resource
    ? [...ctx.apis.values()].find((a) => a.appId === resource || a.identifierUri === resource)
    : undefined;
  if (!api) {
    throw new EntraError(
      'invalid_resource',
      500011,
      `The resource principal named ${resource ?? scope} was not found in the tenant named ${tid}. This can happen if the application has not been installed by the administrator of the tenant.`,
      400,
    );
  }
  const iat = Math.floor(ctx.now() / 1000);
  const expiresIn = 3599;
  const oid = client.servicePrincipalId ?? client.clientId;
  const roles = client.appRoles?.[api.appId] ?? [];
  const common = { iat, nbf: iat, exp: iat + expiresIn, oid, sub: oid, tid, idtyp: 'app', uti: randomUUID() };
  const claims =
    api.accessTokenVersion === 2
      ? {
          ...common,
          aud: api.appId,
          iss: `${ctx.issuerBase(req)}/${tid}/v2.0`,
          azp: client.clientId,
          azpacr: '1',
          ver: '2.0',
        }
      : {
          ...common,
          aud: api.identifierUri,
          iss: `https://sts.windows.net/${tid}/`,
          appid: client.clientId,
          appidacr: '1',
          ver: '1.0',
        };
  const accessToken = ctx.signer.sign(roles.length > 0 ? { ...claims, roles } : claims);
  return {
    token_type: 'Bearer',
    expires_in: expiresIn,
    ext_expires_in: expiresIn,
    access_token: accessToken,
  };
}

/**
 * The client credentials grant (RFC 6749 §4.4; Microsoft identity platform "OAuth 2.0 client
 * credentials flow"): an app token with the app roles an admin granted, `idtyp: app` and no `scp`,
 * for an API registered in the simulator (the broker's own API, v1 or v2 shape) or a Microsoft
 * resource (Exchange Online for IMAP/POP/SMTP, Graph, SharePoint), which issue v1 tokens. The
 * client may authenticate with a secret, a certificate assertion or a federated credential (a
 * managed identity's token): token.ts has checked that before this runs.
 */
import { randomUUID } from 'node:crypto';
import type { SimulatorClient, SimulatorContext, SimulatorRequest } from './context.js';
import { EntraError, missingParam } from './errors.js';

/** First-party resources by identifier URI: their app ids (what `appRoles` is keyed by). */
const MICROSOFT_RESOURCES: ReadonlyArray<{ uri: RegExp; appId: string }> = [
  { uri: /^https:\/\/outlook\.office(?:365)?\.com$/i, appId: '00000002-0000-0ff1-ce00-000000000000' },
  { uri: /^https:\/\/graph\.microsoft\.com$/i, appId: '00000003-0000-0000-c000-000000000000' },
  { uri: /^https:\/\/[a-z0-9-]+\.sharepoint\.com$/i, appId: '00000003-0000-0ff1-ce00-000000000000' },
];

interface Audience {
  appId: string;
  aud: string;
  version: 1 | 2;
}

function audienceOf(ctx: SimulatorContext, resource: string): Audience | undefined {
  const api = [...ctx.apis.values()].find((a) => a.appId === resource || a.identifierUri === resource);
  if (api) {
    const version = api.accessTokenVersion;
    return { appId: api.appId, aud: version === 2 ? api.appId : api.identifierUri, version };
  }
  const known = MICROSOFT_RESOURCES.find((r) => r.uri.test(resource));
  return known ? { appId: known.appId, aud: resource.toLowerCase(), version: 1 } : undefined;
}

export function clientCredentials(
  ctx: SimulatorContext,
  req: SimulatorRequest,
  client: SimulatorClient,
  tid: string,
): object {
  const assertion = req.form.has('client_assertion');
  if (client.secret === undefined && !assertion) {
    // A public client has nothing to prove it is the app.
    throw new EntraError(
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      401,
    );
  }
  if (client.servicePrincipalTenants && !client.servicePrincipalTenants.includes(tid)) {
    throw new EntraError(
      'invalid_client',
      7000229,
      `The client application ${client.clientId} is missing service principal in the tenant ${tid}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119`,
      401,
    );
  }
  const scope = req.form.get('scope');
  if (!scope) throw missingParam('scope');
  const scopes = scope.split(' ').filter(Boolean);
  const resource = scopes.length === 1 ? /^(.+)\/\.default$/i.exec(scopes[0]!)?.[1] : undefined;
  if (!resource) {
    throw new EntraError(
      'invalid_scope',
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const audience = audienceOf(ctx, resource);
  if (!audience) {
    throw new EntraError(
      'invalid_resource',
      500011,
      `The resource principal named ${resource} was not found in the tenant named ${tid}. This can happen if the application has not been installed by the administrator of the tenant.`,
      400,
    );
  }
  const iat = Math.floor(ctx.now() / 1000);
  const expiresIn = 3599;
  const oid = client.servicePrincipalId ?? client.clientId;
  const roles = client.appRoles?.[audience.appId] ?? client.appRoles?.[resource] ?? [];
  // `appidacr`/`azpacr`: 1 = client secret, 2 = certificate or federated assertion.
  const acr = assertion ? '2' : '1';
  const common = { iat, nbf: iat, exp: iat + expiresIn, oid, sub: oid, tid, idtyp: 'app', uti: randomUUID() };
  const claims =
    audience.version === 2
      ? {
          ...common,
          aud: audience.aud,
          iss: `${ctx.issuerBase(req)}/${tid}/v2.0`,
          azp: client.clientId,
          azpacr: acr,
          ver: '2.0',
        }
      : {
          ...common,
          aud: audience.aud,
          iss: `https://sts.windows.net/${tid}/`,
          appid: client.clientId,
          appidacr: acr,
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

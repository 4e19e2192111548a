import { trimSlash } from '../config/urls.js';
import { BrokerError } from '../errors.js';
import {
  authorizationUrl,
  clientAuthentication,
  firstString,
  getRequest,
  jsonBody,
  redeem,
  send,
  type TokenEndpointFailure,
  type TokenSet,
  tokenRequest,
} from '../oauth/index.js';
import { once } from '../once.js';
import { requireClientSecret } from './client-secret.js';
import type { AccountInfo, DialectFactory } from './provider.js';
import {
  ACS_RETIRED_ERROR,
  type AcsClassifyContext,
  classifyAcsError,
  isRetiredRefusal,
} from './sharepoint-acs-errors.js';

export { ACS_RETIRED_ERROR };

/** SharePoint's well-known principal id: the first half of every ACS `resource` for a site. */
export const SHAREPOINT_PRINCIPAL = '00000003-0000-0ff1-ce00-000000000000';
/** The day Azure ACS stopped working for SharePoint Online (Microsoft 365 message MC693863). */
export const ACS_RETIRED_FOR_SHAREPOINT_ONLINE = Date.parse('2026-04-02T00:00:00Z');
/** ACS refresh tokens live 6 calendar months from consent; refreshing does not extend them. */
export const ACS_REFRESH_TOKEN_MONTHS = 6;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** SharePoint Online's hosts, commercial and government clouds. */
const SHAREPOINT_ONLINE = /\.sharepoint(-mil)?\.(com|us|cn)$/i;
/** Scopes the broker adds for OpenID providers; ACS's scope vocabulary has none of them. */
const NOT_ACS_SCOPES = new Set(['offline_access', 'openid', 'profile', 'email']);
/** One `acs.retired` log line per connection per hour is enough to be seen. */
const RETIRED_LOG_EVERY_MS = 60 * 60 * 1000;

/**
 * The auth-params of the `Bearer` challenge in a `WWW-Authenticate` header (RFC 7235 §4.1, RFC 6750
 * §3), e.g. `Bearer realm="…", client_id="…"`; other schemes in the same header (SharePoint sends
 * `NTLM` and `Negotiate` on premises) are skipped. Names are lower-cased; undefined without `Bearer`.
 */
export function parseBearerChallenge(header: string | null | undefined): Record<string, string> | undefined {
  if (!header) return undefined;
  const start = /(?:^|[\s,])Bearer(?=\s|,|$)/i.exec(header);
  if (!start) return undefined;
  const params: Record<string, string> = {};
  const param = /[\s,]*([A-Za-z0-9_!#$%&'*+.^`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))/y;
  param.lastIndex = start.index + start[0].length;
  for (let match = param.exec(header); match; match = param.exec(header)) {
    const name = match[1]!.toLowerCase();
    params[name] = match[2] === undefined ? (match[3] ?? '') : match[2].replace(/\\(.)/g, '$1');
  }
  return params;
}

/** `at` plus `months` calendar months (UTC), the day clamped to the month's last (Aug 31 + 6 → Feb 28/29). */
export function addCalendarMonths(at: Date, months: number): Date {
  const day = at.getUTCDate();
  const shifted = new Date(at.getTime());
  shifted.setUTCDate(1);
  shifted.setUTCMonth(shifted.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(shifted.getUTCFullYear(), shifted.getUTCMonth() + 1, 0)).getUTCDate();
  shifted.setUTCDate(Math.min(day, lastDay));
  return shifted;
}

export function isSharePointOnline(host: string): boolean {
  return SHAREPOINT_ONLINE.test(host.replace(/:\d+$/, ''));
}

/**
 * The legacy SharePoint add-in authorization ("low trust") through Azure ACS: realm discovery from the
 * site's `client.svc` challenge, consent at the site's `OAuthAuthorize.aspx` (no PKCE: ACS has none),
 * tokens from `{accessControlUrl}/{realm}/tokens/OAuth/2` for `client_id@realm` and the
 * SharePoint `resource`. Refresh tokens do not rotate and die 6 months after consent.
 *
 * ACS stopped serving SharePoint Online on 2026-04-02; for a `*.sharepoint.com` site every refusal
 * after that day is reported as that retirement, pointing at the `entra` replacement.
 */
export const sharepointAcsDialect: DialectFactory = (connection, deps) => {
  if (connection.provider !== 'sharepoint-acs') {
    throw new TypeError(
      `sharepointAcsDialect cannot serve the ${connection.provider} connection "${connection.id}"`,
    );
  }
  const siteUrl = trimSlash(connection.siteUrl);
  const siteHost = new URL(siteUrl).host;
  const accessControlUrl = trimSlash(connection.accessControlUrl);
  const secretName = connection.credential?.secretName;
  const defaultScopes = connection.scopes.filter((s) => !NOT_ACS_SCOPES.has(s.toLowerCase()));
  let retiredLoggedAt = Number.NEGATIVE_INFINITY;

  /** The site's realm (its tenant id), learned once from the add-in challenge and kept; a failed lookup is asked again. */
  const realm = once(() => discoverRealm());

  /**
   * An anonymous request with an empty bearer token makes SharePoint answer 401 with
   * `WWW-Authenticate: Bearer realm="{tenant id}", client_id="00000003-…"`.
   */
  async function discoverRealm(): Promise<string> {
    const response = await send(
      deps,
      getRequest(`${siteUrl}/_vti_bin/client.svc`, {
        connectionId: connection.id,
        headers: { authorization: 'Bearer' },
      }),
    );
    const found = parseBearerChallenge(response.headers.get('www-authenticate'))?.realm;
    if (response.status === 401 && found && GUID.test(found)) {
      deps.logger.info('acs.realm_discovered', { connection: connection.id, site: siteHost, realm: found });
      return found.toLowerCase();
    }
    throw new BrokerError(
      'client_misconfigured',
      `${siteUrl} did not name its realm in the add-in challenge (GET /_vti_bin/client.svc answered HTTP ${response.status}` +
        `${found ? `, realm "${found}" is not a tenant id` : ', no Bearer realm'}). Check "siteUrl": it must be the SharePoint site the add-in was registered on.`,
      {
        connectionId: connection.id,
        providerError: { error: `http_${response.status}`, status: response.status },
      },
    );
  }

  /** One `acs.retired` line an hour per connection: the dialect's own, beside the error it classifies. */
  function logRetired(failure: TokenEndpointFailure): void {
    const now = deps.clock.now();
    if (now - retiredLoggedAt < RETIRED_LOG_EVERY_MS) return;
    retiredLoggedAt = now;
    deps.logger.warn('acs.retired', {
      connection: connection.id,
      site: siteHost,
      status: failure.status,
      error: failure.oauthError?.error,
      migrate: 'docs/sharepoint.md',
    });
  }

  const classify = (failure: TokenEndpointFailure) => {
    const context: AcsClassifyContext = {
      connectionId: connection.id,
      secretName,
      credentialType: connection.credential?.type ?? 'none',
      siteHost,
      retired: isSharePointOnline(siteHost) && deps.clock.now() >= ACS_RETIRED_FOR_SHAREPOINT_ONLINE,
    };
    if (isRetiredRefusal(failure, context)) logRetired(failure);
    return classifyAcsError(failure, context);
  };

  /**
   * A token request at `{accessControlUrl}/{realm}/tokens/OAuth/2` as `client_id@realm`
   * (`client_secret_post`), for the site's `resource`.
   */
  async function redeemAtAcs(params: Record<string, string>): Promise<TokenSet> {
    const tenant = await realm();
    const secret = await requireClientSecret(deps, connection);
    const request = tokenRequest(
      `${accessControlUrl}/${tenant}/tokens/OAuth/2`,
      { ...params, resource: `${SHAREPOINT_PRINCIPAL}/${siteHost}@${tenant}` },
      {
        auth: clientAuthentication('client_secret_post', `${connection.clientId}@${tenant}`, secret),
        connectionId: connection.id,
      },
    );
    const tokens = await redeem(deps, request, classify);
    // ACS names the resource, not the permissions: the consented scopes are what the token carries.
    return tokens.scope ? tokens : { ...tokens, scope: defaultScopes.join(' ') };
  }

  return {
    defaultScopes,

    /** SharePoint's consent page ("Trust It"): RFC 6749 §4.1.1 without PKCE, which ACS lacks. */
    async authorizeUrl({ state, redirectUri }) {
      if (defaultScopes.length === 0) {
        throw new BrokerError(
          'client_misconfigured',
          `Connection ${connection.id} names no SharePoint add-in permission in "scopes" (such as AllSites.Manage or Web.Read).`,
          { connectionId: connection.id },
        );
      }
      return authorizationUrl(`${siteUrl}/_layouts/15/OAuthAuthorize.aspx`, {
        client_id: connection.clientId,
        scope: defaultScopes.join(' '),
        response_type: 'code',
        redirect_uri: redirectUri,
        state,
      });
    },

    /** RFC 6749 §4.1.3 at ACS, for `client_id@realm` and the site's `resource`; the code lives 5 minutes. */
    exchangeCode({ code, redirectUri }) {
      return redeemAtAcs({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
    },

    /** RFC 6749 §6 at ACS: a new access token, the same refresh token (none comes back). */
    refresh({ refreshToken, scopes }) {
      if (scopes !== undefined) {
        return Promise.reject(
          new BrokerError(
            'invalid_request',
            `Connection ${connection.id} is a SharePoint add-in (ACS): its tokens are for ${siteHost} only, so it takes no "scope".`,
            { connectionId: connection.id },
          ),
        );
      }
      return redeemAtAcs({ grant_type: 'refresh_token', refresh_token: refreshToken });
    },

    /**
     * The consenting person from SharePoint's `GET /_api/web/currentuser` (its `Email`, else
     * `LoginName`), the realm as tenant. A failing call leaves the account empty: consent stands.
     */
    async accountOf(tokens) {
      const info: AccountInfo = {};
      // Known by now: every code exchange and refresh looked it up first.
      info.tenant = await realm().catch(() => undefined);
      try {
        const response = await send(
          deps,
          getRequest(`${siteUrl}/_api/web/currentuser`, {
            connectionId: connection.id,
            headers: {
              accept: 'application/json;odata=verbose',
              authorization: `${tokens.tokenType} ${tokens.accessToken}`,
            },
          }),
        );
        const body = jsonBody(response) as { d?: Record<string, unknown> } & Record<string, unknown>;
        const user = typeof body?.d === 'object' && body.d !== null ? body.d : body;
        const account = firstString(user?.Email, user?.LoginName);
        if (response.status === 200 && account !== undefined) info.account = account;
        else
          deps.logger.warn('acs.currentuser_failed', { connection: connection.id, status: response.status });
      } catch (err) {
        deps.logger.warn('acs.currentuser_failed', {
          connection: connection.id,
          code: err instanceof BrokerError ? err.code : 'internal_error',
        });
      }
      return info;
    },

    hardExpiry(consentedAtMs) {
      return addCalendarMonths(new Date(consentedAtMs), ACS_REFRESH_TOKEN_MONTHS);
    },
  };
};

/**
 * A SharePoint site and the Azure ACS token endpoint it trusts (the legacy add-in "low trust" flow),
 * served on 127.0.0.1 over real HTTP for the broker's `sharepoint-acs` dialect:
 *
 * - site: `GET /_vti_bin/client.svc` answers an empty bearer with 401 and
 *   `WWW-Authenticate: Bearer realm="…", client_id="00000003-…", …` (realm discovery);
 *   `/_layouts/15/OAuthAuthorize.aspx` is the "Do you trust …?" page (no PKCE, state echoed);
 *   `/_api/web` and `/_api/web/currentuser` are bearer-checked REST calls.
 * - ACS: `POST /{realm}/tokens/OAuth/2` for `client_id={id}@{realm}`, `client_secret` and
 *   `resource=00000003-0000-0ff1-ce00-000000000000/{host}@{realm}`; every number in its answers is a
 *   string of digits; a refresh answers without a refresh token; refresh tokens die 6 calendar months
 *   after consent; errors are `{"error": …, "error_description": "ACS50012: …"}` bodies.
 *   `retire()` makes it refuse everything with 401 `invalid_client`, as it has for SharePoint Online
 *   since 2026-04-02. (ACS50001 and ACS50012 are the numbers ACS is known to send for these cases;
 *   the others here are modelled.)
 *
 * `siteAlias` lets the site pose as e.g. `https://contoso.sharepoint.com`: the fake's `fetch` then
 * maps that origin to the loopback server, for the broker and the consent driver alike.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseForm } from './consent-client.js';

export const SHAREPOINT_PRINCIPAL = '00000003-0000-0ff1-ce00-000000000000';
const ACS_PRINCIPAL = '00000001-0000-0000-c000-000000000000';
const CODE_LIFETIME_MS = 5 * 60 * 1000;
const REFRESH_TOKEN_MONTHS = 6;

export interface AcsUser {
  /** Empty for accounts without a mailbox: the broker then takes `LoginName`. */
  email: string;
  title?: string;
}

export interface AcsSimulatorOptions {
  /** The add-in's client id (from appregnew.aspx). */
  clientId: string;
  clientSecret?: string;
  redirectUris?: string[];
  realm?: string;
  /** Epoch ms. */
  now?: () => number;
  /** The origin clients use for the site, e.g. `https://contoso.sharepoint.com`; default: its loopback URL. */
  siteAlias?: string;
  /** Default 43200 (ACS's 12 hours); `expires_in` is one less, as ACS answers "43199". */
  accessTokenLifetimeSec?: number;
  /** Lets `_api/*` accept bearer tokens from another issuer too (Entra's SharePoint tokens). */
  acceptBearer?: (token: string) => { account: string } | undefined;
}

export type AcsEndpoint = 'realm' | 'token' | 'currentuser' | 'web';

export interface AcsStats {
  realmRequests: number;
  tokenRequests: number;
  byGrant: Record<string, number>;
  /** Requests that carried a PKCE parameter (ACS has no PKCE: the broker must not send one). */
  pkceParams: number;
  /** `_api/*` calls that were answered 200. */
  apiCalls: number;
}

interface Grant {
  account: string;
  scope: string;
  consentedAt: number;
  revoked: boolean;
}

interface CodeRecord {
  grant: Grant;
  redirectUri: string;
  expiresAt: number;
  used: boolean;
}

class AcsError extends Error {
  constructor(
    readonly error: string,
    readonly number: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class AcsSimulator {
  readonly realm: string;
  readonly stats: AcsStats = { realmRequests: 0, tokenRequests: 0, byGrant: {}, pkceParams: 0, apiCalls: 0 };
  private clientSecret: string | undefined;
  private readonly redirectUris = new Set<string>();
  private readonly codes = new Map<string, CodeRecord>();
  private readonly refreshTokens = new Map<string, { grant: Grant; expiresAt: number }>();
  private readonly accessTokens = new Map<string, { account: string; resource: string; expiresAt: number }>();
  private readonly users = new Map<string, AcsUser>();
  private readonly faults: Record<AcsEndpoint, Array<{ status: number; body?: string }>> = {
    realm: [],
    token: [],
    currentuser: [],
    web: [],
  };
  private readonly secrets: string[] = [];
  private retired = false;
  /** The host clients address the site by (the `resource`'s middle part). */
  siteHost = '';

  constructor(private readonly options: AcsSimulatorOptions) {
    this.realm = options.realm ?? randomUUID();
    this.clientSecret = options.clientSecret;
    for (const uri of options.redirectUris ?? []) this.redirectUris.add(uri);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  setClientSecret(secret: string): void {
    this.clientSecret = secret;
    this.secrets.push(secret);
  }

  registerRedirectUri(uri: string): void {
    this.redirectUris.add(uri);
  }

  /** How `_api/web/currentuser` describes `account` (default: its own address as `Email`). */
  setUser(account: string, user: AcsUser): void {
    this.users.set(account, user);
  }

  /** Answer as ACS has for SharePoint Online since 2026-04-02 (or stop doing so). */
  retire(retired = true): void {
    this.retired = retired;
  }

  revokeGrants(): void {
    for (const { grant } of this.refreshTokens.values()) grant.revoked = true;
  }

  failNext(endpoint: AcsEndpoint, response: { status: number; body?: string }, times = 1): void {
    for (let i = 0; i < times; i++) this.faults[endpoint].push(response);
  }

  /** Every code and token it issued and the client secret: none may appear in a log or a file. */
  issuedSecrets(): string[] {
    return [...this.secrets];
  }

  /** The refresh tokens alive now (not revoked, not expired). */
  liveRefreshTokens(): number {
    const now = this.now();
    return [...this.refreshTokens.values()].filter((r) => !r.grant.revoked && r.expiresAt > now).length;
  }

  // ---- site ------------------------------------------------------------------------------------

  async handleSite(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://site');
    const path = url.pathname.toLowerCase();
    if (path === '/_vti_bin/client.svc') {
      this.stats.realmRequests++;
      const fault = this.faults.realm.shift();
      if (fault) return send(res, fault.status, TEXT, fault.body ?? '');
      return this.challenge(
        res,
        '{"error":"invalid_request","error_description":"Token type is not allowed."}',
      );
    }
    if (path === '/_layouts/15/oauthauthorize.aspx') {
      const form = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
      if (form.has('code_challenge') || form.has('code_challenge_method')) this.stats.pkceParams++;
      return req.method === 'POST' ? this.trust(res, form) : this.authorizePage(res, form);
    }
    if (path === '/_api/web' || path === '/_api/web/currentuser') {
      const endpoint: AcsEndpoint = path === '/_api/web' ? 'web' : 'currentuser';
      const fault = this.faults[endpoint].shift();
      if (fault) return send(res, fault.status, JSON_TYPE, fault.body ?? '');
      const account = this.bearer(req);
      if (!account) {
        return this.challenge(res, '{"error_description":"Invalid issuer or signature."}');
      }
      this.stats.apiCalls++;
      const verbose = /odata=verbose/i.test(String(req.headers.accept ?? ''));
      const body = endpoint === 'web' ? this.web() : this.currentUser(account);
      return send(res, 200, JSON_TYPE, JSON.stringify(verbose ? { d: body } : body));
    }
    send(res, 404, TEXT, 'Not found');
  }

  private challenge(res: ServerResponse, body: string): void {
    const challenge =
      `Bearer realm="${this.realm}",client_id="${SHAREPOINT_PRINCIPAL}",` +
      `trusted_issuers="${ACS_PRINCIPAL}@${this.realm},https://sts.windows.net/*/",` +
      'authorization_uri="https://login.windows.net/common/oauth2/authorize"';
    send(res, 401, { ...JSON_TYPE, 'WWW-Authenticate': challenge }, body);
  }

  private bearer(req: IncomingMessage): string | undefined {
    const token = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token) return undefined;
    const issued = this.accessTokens.get(token);
    if (issued) {
      const resource = `${SHAREPOINT_PRINCIPAL}/${this.siteHost}@${this.realm}`;
      return issued.expiresAt > this.now() && issued.resource === resource ? issued.account : undefined;
    }
    return this.options.acceptBearer?.(token)?.account;
  }

  private web(): object {
    return {
      Id: '8f2d4b1e-6c7a-4e59-9b0d-3a1f2c5e7d90',
      Title: 'City Intranet',
      Url: `https://${this.siteHost}`,
      ServerRelativeUrl: '/',
      WebTemplate: 'STS',
    };
  }

  private currentUser(account: string): object {
    const user = this.users.get(account) ?? { email: account };
    return {
      Id: 11,
      Title: user.title ?? account.split('@')[0],
      Email: user.email,
      LoginName: `i:0#.f|membership|${account}`,
      UserPrincipalName: account,
      IsSiteAdmin: false,
    };
  }

  private authorizePage(res: ServerResponse, params: URLSearchParams) {
    const problem = this.authorizeProblem(params);
    if (problem)
      return sendHtml(res, 400, `<h1>Sorry, something went wrong</h1><p>${escapeHtml(problem)}</p>`);
    const hidden = ['client_id', 'scope', 'response_type', 'redirect_uri', 'state']
      .filter((name) => params.has(name))
      .map((name) => `<input type="hidden" name="${name}" value="${escapeHtml(params.get(name) ?? '')}">`)
      .join('\n');
    sendHtml(
      res,
      200,
      `<h1>Do you trust City Intranet Proxy?</h1>
<p>It wants: ${escapeHtml(params.get('scope') ?? '')}</p>
<form method="post" action="/_layouts/15/OAuthAuthorize.aspx">
${hidden}
<label>Signed in as <input type="email" name="account" value="user@contoso.com"></label>
<button type="submit" name="trust" value="Trust It">Trust It</button>
<button type="submit" name="cancel" value="Cancel">Cancel</button>
</form>`,
    );
  }

  private authorizeProblem(params: URLSearchParams): string | undefined {
    if (params.get('client_id') !== this.options.clientId)
      return 'The app identifier is not registered here.';
    if (params.get('response_type') !== 'code') return 'Only response_type=code is supported.';
    if (!this.redirectUris.has(params.get('redirect_uri') ?? ''))
      return 'The redirect URI does not match the one registered for the app.';
    const scopes = (params.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (scopes.length === 0 || !scopes.every((s) => /^[A-Za-z]+\.(Read|Write|Manage|FullControl)$/.test(s)))
      return 'The scope is not valid: use permissions such as AllSites.Manage or Web.Read.';
    return undefined;
  }

  private trust(res: ServerResponse, form: URLSearchParams) {
    const problem = this.authorizeProblem(form);
    if (problem)
      return sendHtml(res, 400, `<h1>Sorry, something went wrong</h1><p>${escapeHtml(problem)}</p>`);
    const target = new URL(form.get('redirect_uri')!);
    const state = form.get('state');
    if (state !== null) target.searchParams.set('state', state);
    if (form.has('cancel')) {
      target.searchParams.set('error', 'access_denied');
      return send(res, 302, { Location: target.toString() }, '');
    }
    const code = this.secret(`IAAAA${randomBytes(48).toString('base64url')}`);
    const now = this.now();
    this.codes.set(code, {
      grant: {
        account: form.get('account') || 'user@contoso.com',
        scope: form.get('scope')!,
        consentedAt: now,
        revoked: false,
      },
      redirectUri: form.get('redirect_uri')!,
      expiresAt: now + CODE_LIFETIME_MS,
      used: false,
    });
    target.searchParams.set('code', code);
    send(res, 302, { Location: target.toString() }, '');
  }

  // ---- ACS ---------------------------------------------------------------------------------------

  async handleAcs(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://acs');
    const match = /^\/([^/]+)\/tokens\/OAuth\/2$/i.exec(url.pathname);
    if (!match || req.method !== 'POST') return send(res, 404, TEXT, 'Not found');
    const form = new URLSearchParams(await readBody(req));
    this.stats.tokenRequests++;
    const grantType = form.get('grant_type') ?? '';
    this.stats.byGrant[grantType] = (this.stats.byGrant[grantType] ?? 0) + 1;
    if (form.has('code_verifier')) this.stats.pkceParams++;
    const fault = this.faults.token.shift();
    if (fault) return send(res, fault.status, JSON_TYPE, fault.body ?? '');
    try {
      sendJsonBody(res, 200, this.token(match[1]!, form));
    } catch (err) {
      if (!(err instanceof AcsError)) throw err;
      const description = `${err.number}: ${err.message}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date(this.now()).toISOString().replace('T', ' ').slice(0, 19)}Z`;
      sendJsonBody(res, err.status, { error: err.error, error_description: description });
    }
  }

  private token(realm: string, form: URLSearchParams): object {
    if (this.retired || realm !== this.realm) {
      throw new AcsError('invalid_client', 'ACS50012', 'Authentication failed.', 401);
    }
    if (
      form.get('client_id') !== `${this.options.clientId}@${this.realm}` ||
      !this.clientSecret ||
      form.get('client_secret') !== this.clientSecret
    ) {
      throw new AcsError('invalid_client', 'ACS50012', 'Authentication failed.', 401);
    }
    const resource = form.get('resource');
    if (!resource)
      throw new AcsError('invalid_request', 'ACS50001', "The required field 'resource' is missing.");
    if (resource !== `${SHAREPOINT_PRINCIPAL}/${this.siteHost}@${this.realm}`) {
      throw new AcsError(
        'invalid_request',
        'ACS50001',
        `Relying party with identifier '${resource}' was not found.`,
      );
    }
    const now = this.now();
    switch (form.get('grant_type')) {
      case 'authorization_code': {
        const record = this.codes.get(form.get('code') ?? '');
        if (!record || record.used || record.expiresAt <= now) {
          if (record) record.used = true;
          throw new AcsError(
            'invalid_grant',
            'ACS50008',
            'The authorization code is invalid or has expired.',
          );
        }
        if (form.get('redirect_uri') !== record.redirectUri) {
          throw new AcsError(
            'invalid_grant',
            'ACS50008',
            'The redirect URI does not match the authorization request.',
          );
        }
        record.used = true;
        const refreshToken = this.secret(`IAAAA${randomBytes(96).toString('base64url')}`);
        const expiresAt = monthsLater(record.grant.consentedAt, REFRESH_TOKEN_MONTHS);
        this.refreshTokens.set(refreshToken, { grant: record.grant, expiresAt });
        return { ...this.accessToken(record.grant, resource), refresh_token: refreshToken };
      }
      case 'refresh_token': {
        const record = this.refreshTokens.get(form.get('refresh_token') ?? '');
        if (!record || record.grant.revoked) {
          throw new AcsError(
            'invalid_grant',
            'ACS50027',
            'The refresh token is invalid or has been revoked.',
          );
        }
        if (record.expiresAt <= now) {
          throw new AcsError('invalid_grant', 'ACS50027', 'The refresh token has expired.');
        }
        // ACS answers a refresh with an access token only: the refresh token stays until its end.
        return this.accessToken(record.grant, resource);
      }
      default:
        throw new AcsError('unsupported_grant_type', 'ACS90003', 'The grant type is not supported.');
    }
  }

  /** ACS's success body: every number a string. */
  private accessToken(grant: Grant, resource: string): Record<string, string> {
    const lifetime = this.options.accessTokenLifetimeSec ?? 43_200;
    const nbf = Math.floor(this.now() / 1000);
    const expiresOn = nbf + lifetime - 1;
    const claims = {
      aud: resource,
      iss: `${ACS_PRINCIPAL}@${this.realm}`,
      nbf,
      exp: expiresOn,
      nameid: randomBytes(8).toString('hex'),
      actor: `${this.options.clientId}@${this.realm}`,
      identityprovider: 'urn:federation:microsoftonline',
    };
    const jwt = [{ typ: 'JWT', alg: 'HS256' }, claims]
      .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
      .join('.');
    const token = this.secret(`${jwt}.${randomBytes(32).toString('base64url')}`);
    this.accessTokens.set(token, { account: grant.account, resource, expiresAt: expiresOn * 1000 });
    return {
      token_type: 'Bearer',
      access_token: token,
      expires_in: String(lifetime - 1),
      not_before: String(nbf),
      expires_on: String(expiresOn),
      resource,
    };
  }

  private secret(value: string): string {
    this.secrets.push(value);
    return value;
  }
}

export interface AcsFake {
  sim: AcsSimulator;
  /** The site as clients address it (the alias when one was given). */
  siteUrl: string;
  /** The ACS base URL (`accessControlUrl`). */
  accessControlUrl: string;
  /** `fetch` that reaches the aliased site on its loopback server; other URLs pass through. */
  fetch: typeof fetch;
  close(): Promise<void>;
}

/** Starts the site and ACS on two loopback ports. */
export async function startAcsSimulator(options: AcsSimulatorOptions): Promise<AcsFake> {
  const sim = new AcsSimulator(options);
  const site = await listen((req, res) => sim.handleSite(req, res));
  const acs = await listen((req, res) => sim.handleAcs(req, res));
  const loopbackSite = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const siteUrl = options.siteAlias ?? loopbackSite;
  sim.siteHost = new URL(siteUrl).host;
  const aliasOrigin = options.siteAlias ? new URL(options.siteAlias).origin : undefined;
  const mapped: typeof fetch = (input, init) => {
    if (aliasOrigin && (typeof input === 'string' || input instanceof URL)) {
      const url = new URL(String(input));
      if (url.origin === aliasOrigin) return fetch(`${loopbackSite}${url.pathname}${url.search}`, init);
    }
    return fetch(input, init);
  };
  return {
    sim,
    siteUrl,
    accessControlUrl: `http://127.0.0.1:${(acs.address() as AddressInfo).port}`,
    fetch: mapped,
    close: async () => {
      await Promise.all([site, acs].map(close));
    },
  };
}

export interface TrustOptions {
  /** Begin with `replace=true`: another account may take a connected connection over. */
  replace?: boolean;
  account?: string;
  cancel?: boolean;
  /** Reaches the site (the fake's `fetch` for an aliased site). */
  fetch?: typeof fetch;
}

/**
 * A person's browser for the add-in consent: `/api/start` → the site's "Trust It" page → the
 * broker's callback with the consent cookie. Returns the callback's answer.
 */
export async function trustIt(
  brokerUrl: string,
  functionKey: string,
  connection: string,
  options: TrustOptions = {},
): Promise<{ status: number; body: string }> {
  const siteFetch = options.fetch ?? fetch;
  const replace = options.replace ? '&replace=true' : '';
  const start = await fetch(`${brokerUrl}/api/start?connection=${connection}${replace}`, {
    headers: { 'x-functions-key': functionKey },
    redirect: 'manual',
  });
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`);
  const cookies = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const authorizeUrl = start.headers.get('location')!;
  const page = await siteFetch(authorizeUrl);
  const html = await page.text();
  if (page.status !== 200) throw new Error(`OAuthAuthorize.aspx answered ${page.status}: ${html}`);
  const { action, fields } = parseForm(html, authorizeUrl);
  fields.set('account', options.account ?? 'user@contoso.com');
  if (options.cancel) fields.set('cancel', 'Cancel');
  else fields.set('trust', 'Trust It');
  const posted = await siteFetch(action, { method: 'POST', body: fields, redirect: 'manual' });
  if (posted.status !== 302) throw new Error(`Trust It answered ${posted.status}`);
  const callback = await fetch(posted.headers.get('location')!, {
    headers: { cookie: cookies, accept: 'text/html' },
    redirect: 'manual',
  });
  return { status: callback.status, body: await callback.text() };
}

/** Calendar months later (UTC), the day clamped to the month's last. */
function monthsLater(at: number, months: number): number {
  const from = new Date(at);
  const target = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(from.getUTCDate(), lastDay));
  target.setUTCHours(
    from.getUTCHours(),
    from.getUTCMinutes(),
    from.getUTCSeconds(),
    from.getUTCMilliseconds(),
  );
  return target.getTime();
}

// ---- HTTP plumbing ---------------------------------------------------------------------------------

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' };
const JSON_TYPE = { 'Content-Type': 'application/json; charset=utf-8' };

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<Server> {
  const server = createServer((req, res) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, TEXT, 'simulator error');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

function close(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

function sendJsonBody(res: ServerResponse, status: number, body: object): void {
  send(res, status, JSON_TYPE, JSON.stringify(body));
}

function sendHtml(res: ServerResponse, status: number, content: string): void {
  send(
    res,
    status,
    { 'Content-Type': 'text/html; charset=utf-8' },
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SharePoint</title></head><body>${content}</body></html>`,
  );
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

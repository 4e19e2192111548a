/**
 * A Microsoft Entra ID (identity platform v2) simulator: authorize (with a sign-in page that works
 * without JavaScript), device authorization (`/devicecode` and a `/devicelogin` page where a person
 * enters the user code), token (authorization_code + PKCE, device_code, refresh_token with rotation)
 * and a protected resource (`GET /graph/v1.0/me`). It answers in Entra's own formats (AADSTS error
 * bodies, redirect errors, Graph's 401) so the broker's provider code is exercised as in production.
 *
 * One implementation serves the `npm start` sandbox (mounted under a prefix in the embedded host)
 * and the e2e tests (standalone, with fault injection and counters). It never logs: everything it
 * handles is a secret of some kind.
 */
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface SimulatorClient {
  clientId: string;
  /** Absent = public client (which must then send no secret). */
  secret?: string;
  /** Compared exactly, as Entra does. */
  redirectUris: string[];
  secretExpired?: boolean;
}

export interface EntraSimulatorOptions {
  /** Path prefix the simulator is mounted under, e.g. '/sandbox'; '' (default) = every path. */
  prefix?: string;
  clients: SimulatorClient[];
  /** `tid` for organizations/common/domain tenants; a GUID in the path is used as is. */
  tenantId?: string;
  /** Access token lifetime; `expires_in` is one less, as Entra answers 3599 for an hour. Default 3600. */
  accessTokenLifetimeSec?: number;
  /** Epoch ms. */
  now?: () => number;
  /** Device codes live this long (`expires_in`). Default 900, as Entra. */
  deviceCodeLifetimeSec?: number;
  /** Polling interval the device authorization response names. Default 5, as Entra. */
  devicePollIntervalSec?: number;
  /**
   * Keeps grants across restarts (the `npm start` sandbox): called with the state after every change
   * and read once at construction. Refresh tokens appear in it only as SHA-256 hashes.
   */
  persistence?: { load(): string | undefined; save(state: string): void };
}

export type SimulatorEndpoint = 'token' | 'authorize' | 'resource' | 'devicecode' | 'devicelogin';

export interface InjectedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface SimulatorStats {
  /** Every request that reached the token endpoint, injected failures included. */
  tokenRequests: number;
  /** Token requests by `grant_type`, injected failures included. */
  byGrant: Record<string, number>;
  /** Refresh token -> times it was successfully redeemed. */
  refreshRedemptions: Map<string, number>;
  /** Successful redemptions of a refresh token that had been redeemed before. */
  reuseDetected: number;
  /** Token requests with the device_code grant that reached the device code checks. */
  devicePolls: number;
  /** Device polls sooner than the interval after the previous one (answered `slow_down`). */
  earlyPolls: number;
}

export const DEFAULT_SIMULATOR_TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';
/** The tenant every personal Microsoft account lives in. */
const CONSUMERS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';
const DEFAULT_ACCOUNT = 'sandbox.user@contoso.com';
const GRAPH = 'https://graph.microsoft.com';
const CODE_LIFETIME_MS = 10 * 60_000;
const REFRESH_INACTIVITY_MS = 90 * 86_400_000;
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_BODY = 64 * 1024;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Entra's user codes: 9 letters and digits; this alphabet has no vowels (no words) and no 0/O, 1/I. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ23456789';
const USER_CODE_LENGTH = 9;

/** What a dead grant answers, set by the test controls. */
type GrantState = 'active' | 'revoked' | 'inactive' | 'mfa' | 'consent';

/** One consent: what a code and every refresh token descending from it share. */
interface Grant {
  clientId: string;
  account: string;
  tid: string;
  scopes: string[];
  issuedAt: number;
  state: GrantState;
}

/** One device authorization (RFC 8628): what the device code and the user code share. */
interface DeviceRecord {
  clientId: string;
  tid: string;
  scopes: string[];
  userCode: string;
  expiresAt: number;
  /** Seconds; grows by 5 with every slow_down. */
  interval: number;
  lastPollAt?: number;
  state: 'pending' | 'approved' | 'declined' | 'redeemed';
  grant?: Grant;
}

interface CodeRecord {
  grant: Grant;
  redirectUri: string;
  codeChallenge: string;
  nonce?: string;
  expiresAt: number;
  redeemed: boolean;
}

/** An error as Entra's token endpoint words it; `status` 400, or 401 for invalid_client. */
class EntraError extends Error {
  constructor(
    readonly error: string,
    readonly code: number,
    message: string,
    readonly status = 400,
    readonly suberror?: string,
  ) {
    super(message);
  }
}

const missingParam = (name: string) =>
  new EntraError(
    'invalid_request',
    900144,
    `The request body must contain the following parameter: '${name}'.`,
  );

export class EntraSimulator {
  readonly stats: SimulatorStats = {
    tokenRequests: 0,
    byGrant: {},
    refreshRedemptions: new Map(),
    reuseDetected: 0,
    devicePolls: 0,
    earlyPolls: 0,
  };
  private readonly prefix: string;
  private readonly clients = new Map<string, SimulatorClient>();
  private readonly tenantId: string;
  private readonly lifetimeSec: number;
  private readonly now: () => number;
  private readonly keys: { privateKey: KeyObject; publicKey: KeyObject; kid: string };
  private readonly grants: Grant[] = [];
  private readonly codes = new Map<string, CodeRecord>();
  /** By `tokenHash`. */
  private readonly refreshTokens = new Map<string, { grant: Grant; issuedAt: number }>();
  private readonly secrets: string[] = [];
  private readonly deviceCodes = new Map<string, DeviceRecord>();
  /** Normalized user code -> the same records. */
  private readonly userCodes = new Map<string, DeviceRecord>();
  private deviceLifetimeSec: number;
  private deviceIntervalSec: number;
  private readonly faults: Record<SimulatorEndpoint, InjectedResponse[]> = {
    token: [],
    authorize: [],
    resource: [],
    devicecode: [],
    devicelogin: [],
  };
  private readonly hangs: Record<SimulatorEndpoint, number[]> = {
    token: [],
    authorize: [],
    resource: [],
    devicecode: [],
    devicelogin: [],
  };

  constructor(options: EntraSimulatorOptions) {
    this.prefix = (options.prefix ?? '').replace(/\/+$/, '');
    for (const client of options.clients) this.registerClient(client);
    this.tenantId = options.tenantId ?? DEFAULT_SIMULATOR_TENANT_ID;
    this.lifetimeSec = options.accessTokenLifetimeSec ?? 3600;
    this.now = options.now ?? Date.now;
    this.deviceLifetimeSec = options.deviceCodeLifetimeSec ?? 900;
    this.deviceIntervalSec = options.devicePollIntervalSec ?? 5;
    // A fresh key per simulator: tokens from one run are worthless to any other.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.keys = { privateKey, publicKey, kid: randomBytes(12).toString('base64url') };
    this.persistence = options.persistence;
    this.restore();
  }

  private readonly persistence?: EntraSimulatorOptions['persistence'];

  private restore(): void {
    const text = this.persistence?.load();
    if (!text) return;
    try {
      const state = JSON.parse(text) as { grants: Grant[]; refreshTokens: Array<[string, number, number]> };
      this.grants.push(...state.grants);
      for (const [hash, index, issuedAt] of state.refreshTokens) {
        const grant = this.grants[index];
        if (grant) this.refreshTokens.set(hash, { grant, issuedAt });
      }
    } catch {
      // A damaged state file only means people sign in again.
    }
  }

  private persist(): void {
    if (!this.persistence) return;
    const refreshTokens = [...this.refreshTokens].map(([hash, r]) => [
      hash,
      this.grants.indexOf(r.grant),
      r.issuedAt,
    ]);
    this.persistence.save(JSON.stringify({ grants: this.grants, refreshTokens }));
  }

  /** Adds or replaces an app registration (tests learn the broker's redirect URI after starting it). */
  registerClient(client: SimulatorClient): void {
    this.clients.set(client.clientId, { ...client, redirectUris: [...client.redirectUris] });
  }

  /** Handles the request if its path is under the prefix; returns false otherwise (so a host can fall through). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const { pathname } = url;
    if (this.prefix && pathname !== this.prefix && !pathname.startsWith(`${this.prefix}/`)) return false;
    this.dispatch(req, res, url, pathname.slice(this.prefix.length)).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('simulator error');
    });
    return true;
  }

  // ---- test controls -------------------------------------------------------------------------

  /** The next `times` requests to `endpoint` answer `response` instead (429 + Retry-After, 503, HTML...). */
  failNext(endpoint: SimulatorEndpoint, response: InjectedResponse, times = 1): void {
    for (let i = 0; i < times; i++) this.faults[endpoint].push(response);
  }

  /** The next `times` requests to `endpoint` wait `ms` first; if the caller gives up meanwhile, they are dropped unprocessed. */
  hangNext(endpoint: SimulatorEndpoint, ms: number, times = 1): void {
    for (let i = 0; i < times; i++) this.hangs[endpoint].push(ms);
  }

  /** Existing grants of `account` (or all) answer invalid_grant AADSTS50173; a new sign-in works again. */
  revokeGrants(account?: string): void {
    this.markGrants('revoked', account);
  }

  /** Existing grants answer invalid_grant AADSTS700082 (refresh token inactive for 90 days). */
  expireInactive(account?: string): void {
    this.markGrants('inactive', account);
  }

  /** Existing grants answer interaction_required AADSTS50076 (MFA needed). */
  requireMfa(account?: string): void {
    this.markGrants('mfa', account);
  }

  /** Existing grants answer invalid_grant AADSTS65001 with suberror consent_required. */
  requireConsent(account?: string): void {
    this.markGrants('consent', account);
  }

  /** While expired, the token endpoint answers invalid_client AADSTS7000222 to the right secret. */
  setClientSecretExpired(clientId: string, expired: boolean): void {
    const client = this.clients.get(clientId);
    if (client) client.secretExpired = expired;
  }

  /**
   * What a person does at the device login page: enters `userCode` and signs in as `account`. Throws
   * when no pending device authorization has that user code (unknown, expired, already answered).
   */
  approveDevice(userCode: string, account: string = DEFAULT_ACCOUNT): void {
    this.approve(this.pendingDevice(userCode), account);
  }

  /** Lifetime and polling interval of device codes issued from now on (e.g. a 1 s interval for a real browser). */
  setDeviceTiming(timing: { lifetimeSec?: number; intervalSec?: number }): void {
    this.deviceLifetimeSec = timing.lifetimeSec ?? this.deviceLifetimeSec;
    this.deviceIntervalSec = timing.intervalSec ?? this.deviceIntervalSec;
  }

  /** The person enters `userCode` and then declines; the device's next poll hears authorization_declined. */
  declineDevice(userCode: string): void {
    this.pendingDevice(userCode).state = 'declined';
  }

  private pendingDevice(userCode: string): DeviceRecord {
    const record = this.awaitingPerson(userCode);
    if (!record) throw new Error('no pending device authorization has this user code');
    return record;
  }

  /** The device authorization a person may still answer with this user code. */
  private awaitingPerson(userCode: string): DeviceRecord | undefined {
    const record = this.userCodes.get(normalizeUserCode(userCode));
    return record?.state === 'pending' && this.now() < record.expiresAt ? record : undefined;
  }

  private approve(record: DeviceRecord, account: string): void {
    const grant: Grant = {
      clientId: record.clientId,
      account,
      tid: record.tid,
      scopes: record.scopes,
      issuedAt: this.now(),
      state: 'active',
    };
    this.grants.push(grant);
    record.grant = grant;
    record.state = 'approved';
  }

  /** Every access token, refresh token, id token, code and device code ever issued: tests scan logs and files for them. */
  issuedSecrets(): string[] {
    return [...this.secrets];
  }

  private markGrants(state: GrantState, account?: string): void {
    for (const grant of this.grants) {
      if (account === undefined || grant.account.toLowerCase() === account.toLowerCase()) grant.state = state;
    }
  }

  // ---- routing -------------------------------------------------------------------------------

  private async dispatch(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const route = matchRoute(path);
    if (!route) return send(res, 404, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Not found');
    const body = req.method === 'POST' ? await readBody(req) : '';
    if (body === undefined) return send(res, 413, {}, '');
    const form = isForm(req) ? new URLSearchParams(body) : new URLSearchParams();
    if (route.endpoint === 'token') this.countTokenRequest(form);
    if (!(await this.waitIfHung(route.endpoint, res))) return;
    const fault = this.faults[route.endpoint].shift();
    if (fault) return send(res, fault.status, fault.headers ?? {}, fault.body ?? '');

    const correlationId = headerValue(req, 'client-request-id') ?? randomUUID();
    try {
      if (route.endpoint === 'resource') return this.me(req, res, correlationId);
      if (route.endpoint === 'devicelogin') {
        if (req.method === 'GET') return this.deviceLoginPage(res, url.searchParams.get('otc') ?? '');
        if (req.method === 'POST') return this.deviceLogin(res, form);
        return send(res, 405, { Allow: 'GET, POST' }, '');
      }
      const tid = this.tidFor(route.tenant);
      if (route.endpoint === 'authorize') {
        if (req.method === 'GET')
          return this.authorize(res, url.searchParams, route.tenant, tid, correlationId);
        if (req.method === 'POST') return this.authorize(res, form, route.tenant, tid, correlationId, true);
        return send(res, 405, { Allow: 'GET, POST' }, '');
      }
      if (req.method !== 'POST') {
        const message = `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`;
        throw new EntraError('invalid_request', 900561, message);
      }
      if (route.endpoint === 'devicecode') {
        return sendJson(res, 200, this.deviceAuthorization(req, form, route.tenant, tid));
      }
      return sendJson(res, 200, this.token(req, form, route.tenant));
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      // Errors escaping authorize are shown to the person: there is no trusted redirect URI yet.
      if (route.endpoint === 'authorize') return this.errorPage(res, err, correlationId);
      return sendJson(res, err.status, this.errorBody(err, correlationId));
    }
  }

  private countTokenRequest(form: URLSearchParams): void {
    this.stats.tokenRequests++;
    const grantType = form.get('grant_type');
    if (grantType) this.stats.byGrant[grantType] = (this.stats.byGrant[grantType] ?? 0) + 1;
  }

  /** Resolves false when the caller went away during the hang: then nothing is processed. */
  private async waitIfHung(endpoint: SimulatorEndpoint, res: ServerResponse): Promise<boolean> {
    const ms = this.hangs[endpoint].shift();
    if (ms === undefined) return true;
    let gone = false;
    await new Promise<void>((resolve) => {
      const onClose = () => {
        gone = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        res.off('close', onClose);
        resolve();
      }, ms);
      res.once('close', onClose);
    });
    return !gone;
  }

  /** `tid` of the tenant named in the path; unknown shapes are "not found", as in Entra. */
  private tidFor(tenant: string): string {
    if (tenant === 'consumers') return CONSUMERS_TENANT_ID;
    if (GUID.test(tenant)) return tenant.toLowerCase();
    if (tenant === 'common' || tenant === 'organizations' || /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(tenant)) {
      return this.tenantId;
    }
    const message = `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`;
    throw new EntraError('invalid_request', 90002, message);
  }

  // ---- authorize -----------------------------------------------------------------------------

  /**
   * GET shows the sign-in form; POST is its submit and answers the app through the redirect URI.
   * Client and redirect URI are checked first and their errors thrown (a page): an unregistered
   * redirect URI must never receive anything.
   */
  private authorize(
    res: ServerResponse,
    params: URLSearchParams,
    tenant: string,
    tid: string,
    correlationId: string,
    submitted = false,
  ): void {
    const clientId = params.get('client_id') ?? '';
    const client = this.clients.get(clientId);
    if (!client) throw new EntraError('unauthorized_client', 700016, appNotFound(clientId, tenant));
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
      const { error, error_description, error_uri } = this.errorBody(err, correlationId);
      redirect(res, redirectUri, { error, error_description, error_uri, state });
      return;
    }
    const account = submitted
      ? (params.get('account') ?? '').trim()
      : params.get('login_hint') || DEFAULT_ACCOUNT;
    if (!submitted || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(account)) {
      const error = submitted ? 'Enter a valid email address, phone number, or Skype name.' : undefined;
      this.signInPage(res, tenant, params, client, account, error);
      return;
    }
    const grant: Grant = { clientId, account, tid, scopes, issuedAt: this.now(), state: 'active' };
    this.grants.push(grant);
    const code = this.secret(`1.A${randomBytes(48).toString('base64url')}`);
    this.codes.set(code, {
      grant,
      redirectUri,
      codeChallenge: params.get('code_challenge') ?? '',
      nonce: params.get('nonce') ?? undefined,
      expiresAt: this.now() + CODE_LIFETIME_MS,
      redeemed: false,
    });
    redirect(res, redirectUri, { code, state, session_state: randomUUID() });
  }

  // ---- token ---------------------------------------------------------------------------------

  private token(req: IncomingMessage, form: URLSearchParams, tenant: string): object {
    const grantType = form.get('grant_type');
    if (!grantType) throw missingParam('grant_type');
    const client = this.authenticateClient(req, form, tenant);
    if (grantType === 'authorization_code') return this.redeemCode(form, client);
    if (grantType === 'refresh_token') return this.redeemRefreshToken(form, client);
    if (grantType === DEVICE_CODE_GRANT) return this.redeemDeviceCode(form, client);
    throw new EntraError('unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  }

  /** Secret in the body (client_secret_post) or in Basic auth (client_secret_basic), as Entra accepts. */
  private authenticateClient(req: IncomingMessage, form: URLSearchParams, tenant: string): SimulatorClient {
    const basic = parseBasicAuth(req.headers.authorization);
    const clientId = form.get('client_id') ?? basic?.id;
    const secret = form.get('client_secret') ?? basic?.secret;
    if (!clientId) throw missingParam('client_id');
    const client = this.clients.get(clientId);
    if (!client) throw new EntraError('unauthorized_client', 700016, appNotFound(clientId, tenant));
    if (client.secret === undefined) {
      if (!secret) return client;
      const message =
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.";
      throw new EntraError('invalid_client', 700025, message, 401);
    }
    if (!secret) {
      const message =
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
      throw new EntraError('invalid_client', 7000218, message, 401);
    }
    if (!sameText(secret, client.secret)) {
      const message = `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`;
      throw new EntraError('invalid_client', 7000215, message, 401);
    }
    if (client.secretExpired) {
      const message = `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`;
      throw new EntraError('invalid_client', 7000222, message, 401);
    }
    return client;
  }

  private redeemCode(form: URLSearchParams, client: SimulatorClient): object {
    const code = form.get('code');
    if (!code) throw missingParam('code');
    const record = this.codes.get(code);
    if (!record)
      throw new EntraError('invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    if (record.grant.clientId !== client.clientId) {
      throw new EntraError('invalid_grant', 70000, 'The provided grant is invalid or malformed.');
    }
    if (record.redeemed) {
      const message =
        'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.';
      throw new EntraError('invalid_grant', 54005, message);
    }
    if (this.now() > record.expiresAt) {
      const message =
        'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.';
      throw new EntraError('invalid_grant', 70008, message);
    }
    const redirectUri = form.get('redirect_uri') ?? '';
    if (redirectUri !== record.redirectUri) {
      const message = `The reply address '${redirectUri}' does not match the reply address '${record.redirectUri}' provided when requesting Authorization code.`;
      throw new EntraError('invalid_grant', 50011, message);
    }
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== record.codeChallenge) {
      const message =
        'The Code_Verifier does not match the code_challenge supplied in the authorization request.';
      throw new EntraError('invalid_grant', 501481, message);
    }
    record.redeemed = true;
    return this.issueTokens(record.grant, record.grant.scopes, 'first', record.nonce);
  }

  // ---- device authorization (RFC 8628) -----------------------------------------------------------

  /** `/devicecode`: client_id and scope, as Entra documents it; the answer as Entra words it. */
  private deviceAuthorization(
    req: IncomingMessage,
    form: URLSearchParams,
    tenant: string,
    tid: string,
  ): object {
    const clientId = form.get('client_id');
    if (!clientId) throw missingParam('client_id');
    const client = this.clients.get(clientId);
    if (!client) throw new EntraError('unauthorized_client', 700016, appNotFound(clientId, tenant));
    const scopes = splitScopes(form.get('scope'));
    if (scopes.length === 0) throw missingParam('scope');
    resolveScopes(scopes, 'first');
    const deviceCode = this.secret(`DAQABIQEAAAB${randomBytes(96).toString('base64url')}`);
    let userCode: string;
    do userCode = newUserCode();
    while (this.userCodes.has(userCode));
    const record: DeviceRecord = {
      clientId,
      tid,
      scopes,
      userCode,
      expiresAt: this.now() + this.deviceLifetimeSec * 1000,
      interval: this.deviceIntervalSec,
      state: 'pending',
    };
    this.deviceCodes.set(deviceCode, record);
    this.userCodes.set(userCode, record);
    const verificationUri = `http://${headerValue(req, 'host') ?? '127.0.0.1'}${this.prefix}/devicelogin`;
    return {
      user_code: userCode,
      device_code: deviceCode,
      verification_uri: verificationUri,
      expires_in: this.deviceLifetimeSec,
      interval: this.deviceIntervalSec,
      message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
    };
  }

  /**
   * RFC 8628 §3.4–3.5 with Entra's errors: a redeemed or unknown code is bad_verification_code, then
   * expired_token (AADSTS70019), then slow_down for a poll sooner than the interval after the previous
   * one (counted in `earlyPolls`; the interval grows by 5 s), then authorization_pending (AADSTS70016)
   * or authorization_declined, else the tokens.
   */
  private redeemDeviceCode(form: URLSearchParams, client: SimulatorClient): object {
    const deviceCode = form.get('device_code');
    if (!deviceCode) throw missingParam('device_code');
    this.stats.devicePolls++;
    const record = this.deviceCodes.get(deviceCode);
    if (!record || record.clientId !== client.clientId || record.state === 'redeemed') {
      const message =
        'Invalid verification code. The device_code sent to the token endpoint was not recognized.';
      throw new EntraError('bad_verification_code', 70018, message);
    }
    const now = this.now();
    if (now >= record.expiresAt) {
      throw new EntraError('expired_token', 70019, 'Verification code expired.');
    }
    const last = record.lastPollAt;
    record.lastPollAt = now;
    if (last !== undefined && now - last < record.interval * 1000) {
      this.stats.earlyPolls++;
      record.interval += 5;
      const message = `The client is polling too quickly. Wait at least ${record.interval} seconds between requests.`;
      throw new EntraError('slow_down', 70016, message);
    }
    if (record.state === 'pending') {
      throw new EntraError(
        'authorization_pending',
        70016,
        'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
      );
    }
    if (record.state === 'declined') {
      // Entra documents the error, not its number; 65004 is what it uses for a declined consent.
      throw new EntraError('authorization_declined', 65004, 'The end user denied the authorization request.');
    }
    const grant = record.grant!;
    record.state = 'redeemed';
    return this.issueTokens(grant, grant.scopes, 'first');
  }

  private redeemRefreshToken(form: URLSearchParams, client: SimulatorClient): object {
    const token = form.get('refresh_token');
    if (!token) throw missingParam('refresh_token');
    const record = this.refreshTokens.get(tokenHash(token));
    if (!record)
      throw new EntraError('invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    const { grant } = record;
    if (grant.clientId !== client.clientId) {
      throw new EntraError('invalid_grant', 70000, 'The provided grant is invalid or malformed.');
    }
    this.checkGrantAlive(grant, record.issuedAt);
    const requested = form.has('scope') ? splitScopes(form.get('scope')) : grant.scopes;
    // Validate before counting: a refused request redeems nothing.
    const response = this.issueTokens(grant, requested, 'single');
    const redemptions = (this.stats.refreshRedemptions.get(token) ?? 0) + 1;
    this.stats.refreshRedemptions.set(token, redemptions);
    // Entra tolerates reuse of a rotated-out token for a while; count it so tests can assert it never happens.
    if (redemptions > 1) this.stats.reuseDetected++;
    return response;
  }

  private checkGrantAlive(grant: Grant, tokenIssuedAt: number): void {
    const issued = new Date(tokenIssuedAt).toISOString();
    if (grant.state === 'revoked') {
      const message = `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${new Date(grant.issuedAt).toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(this.now()).toISOString()}'.`;
      throw new EntraError('invalid_grant', 50173, message);
    }
    if (grant.state === 'inactive' || this.now() - tokenIssuedAt > REFRESH_INACTIVITY_MS) {
      const message = `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`;
      throw new EntraError('invalid_grant', 700082, message);
    }
    if (grant.state === 'mfa') {
      const message = `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${GRAPH}'.`;
      throw new EntraError('interaction_required', 50076, message);
    }
    if (grant.state === 'consent') {
      const message = `The user or administrator has not consented to use the application with ID '${grant.clientId}'. Send an interactive authorization request for this user and resource.`;
      throw new EntraError('invalid_grant', 65001, message, 400, 'consent_required');
    }
  }

  /** The success body; `scopes` pick the resource (the access token's `aud`), `multi` how many are allowed. */
  private issueTokens(grant: Grant, scopes: string[], multi: 'first' | 'single', nonce?: string): object {
    const { resource, permissions, oidc } = resolveScopes(scopes, multi);
    const iat = Math.floor(this.now() / 1000);
    const expiresIn = Math.max(1, this.lifetimeSec - 1);
    const user = identity(grant);
    // As Entra words it: permissions, then `profile openid email` (email comes with openid), never offline_access.
    const oidcGranted = ['profile', 'openid', 'email'].filter(
      (s) => oidc.includes(s) || (s === 'email' && oidc.includes('openid')),
    );
    const scp = [...permissions, ...oidcGranted].join(' ');
    const accessToken = this.jwt({
      aud: resource,
      iss: `https://sts.windows.net/${grant.tid}/`,
      iat,
      nbf: iat,
      exp: iat + expiresIn,
      appid: grant.clientId,
      name: user.name,
      oid: user.oid,
      preferred_username: grant.account,
      scp,
      sub: user.subFor(resource),
      tid: grant.tid,
      upn: grant.account,
      jti: randomUUID(),
      ver: '1.0',
    });
    // Graph permissions come back short (`User.Read`), any other resource's in full.
    const fullPermissions = permissions.map((p) => (resource === GRAPH ? p : `${resource}/${p}`));
    const grantedScope = [...fullPermissions, ...oidcGranted].join(' ');
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: grantedScope,
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: accessToken,
    };
    if (grant.scopes.includes('offline_access')) body.refresh_token = this.newRefreshToken(grant);
    if (oidc.includes('openid')) {
      body.id_token = this.jwt({
        aud: grant.clientId,
        iss: `https://login.microsoftonline.com/${grant.tid}/v2.0`,
        iat,
        nbf: iat,
        exp: iat + 3600,
        name: user.name,
        ...(oidc.includes('email') ? { email: grant.account } : {}),
        ...(nonce ? { nonce } : {}),
        oid: user.oid,
        preferred_username: grant.account,
        sub: user.subFor(grant.clientId),
        tid: grant.tid,
        ver: '2.0',
      });
    }
    return body;
  }

  private newRefreshToken(grant: Grant): string {
    const token = this.secret(`1.A${randomBytes(96).toString('base64url')}`);
    this.refreshTokens.set(tokenHash(token), { grant, issuedAt: this.now() });
    this.persist();
    return token;
  }

  // ---- resource and signing ---------------------------------------------------------------------

  /** Graph's `/me`: only tokens this simulator signed, for Graph, unexpired. */
  private me(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const claims = token ? this.verifyJwt(token) : undefined;
    let problem: string | undefined;
    if (!token) problem = 'Access token is empty.';
    else if (!claims) problem = 'Access token validation failure. Invalid signature or malformed token.';
    else if (claims.aud !== GRAPH) problem = 'Access token validation failure. Invalid audience.';
    else if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.now()) {
      problem = 'Lifetime validation failed, the token is expired.';
    }
    if (problem || !claims) {
      const date = new Date(this.now()).toISOString().replace(/\.\d+Z$/, '');
      const error = {
        code: 'InvalidAuthenticationToken',
        message: problem,
        innerError: { date, 'request-id': requestId },
      };
      const wwwAuthenticate = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`;
      sendJson(res, 401, { error }, { 'WWW-Authenticate': wwwAuthenticate });
      return;
    }
    const account = String(claims.upn);
    sendJson(res, 200, {
      '@odata.context': `${GRAPH}/v1.0/$metadata#users/$entity`,
      displayName: String(claims.name),
      userPrincipalName: account,
      mail: account,
      id: String(claims.oid),
    });
  }

  private jwt(claims: Record<string, unknown>): string {
    const header = b64json({ typ: 'JWT', alg: 'RS256', kid: this.keys.kid });
    const input = `${header}.${b64json(claims)}`;
    const signature = sign('RSA-SHA256', Buffer.from(input), this.keys.privateKey).toString('base64url');
    return this.secret(`${input}.${signature}`);
  }

  private verifyJwt(token: string): Record<string, unknown> | undefined {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return undefined;
    const ok = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      this.keys.publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!ok) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
  }

  private secret(value: string): string {
    this.secrets.push(value);
    return value;
  }

  // ---- error rendering -----------------------------------------------------------------------

  /** Entra's error body: the AADSTS text with trace, correlation and time appended, plus the same as fields. */
  private errorBody(err: EntraError, correlationId: string) {
    const timestamp = new Date(this.now())
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replace('T', ' ');
    const traceId = randomUUID();
    const description = `AADSTS${err.code}: ${err.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`;
    return {
      error: err.error,
      error_description: description,
      error_codes: [err.code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
      ...(err.suberror ? { suberror: err.suberror } : {}),
    };
  }

  private errorPage(res: ServerResponse, err: EntraError, correlationId: string): void {
    const { error_description } = this.errorBody(err, correlationId);
    const content = `<h1>Sorry, but we’re having trouble signing you in.</h1>
<p class="err">${escapeHtml(error_description).replace(/\r\n/g, '<br>')}</p>`;
    sendHtml(res, 400, page('Sign in to your account', content));
  }

  /** The device login page: one form for the user code and the account, Continue or Decline. */
  private deviceLoginPage(res: ServerResponse, userCode: string, error?: string, status = 200): void {
    const action = `${this.prefix}/devicelogin`;
    const content = `<div class="banner">Sandbox: a simulated Microsoft device sign-in. No password is asked.</div>
<h1>Enter code</h1>
<p class="app">Enter the code displayed on your app or device, and the account to sign in with.</p>
<form method="post" action="${escapeHtml(action)}">
${error ? `<p class="err" id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<label for="otc">Code</label>
<input type="text" name="otc" id="otc" value="${escapeHtml(userCode)}" autocomplete="off" autofocus>
<label for="account">Email, phone, or Skype</label>
<input type="email" name="account" id="account" value="" autocomplete="username">
<div class="buttons">
<button type="submit" name="decline" value="Decline" id="decline" class="secondary" formnovalidate>Decline</button>
<button type="submit" name="approve" value="Continue" id="approve" class="primary">Continue</button>
</div>
</form>`;
    sendHtml(res, status, page('Enter code', content));
  }

  /** The device login form's submit: the code must be pending; Decline ends it, Continue signs in. */
  private deviceLogin(res: ServerResponse, form: URLSearchParams): void {
    const userCode = form.get('otc') ?? '';
    const record = this.awaitingPerson(userCode);
    if (!record) {
      this.deviceLoginPage(res, userCode, "That code didn't work. Check the code and try again.", 400);
      return;
    }
    if (form.has('decline') || form.get('action') === 'decline') {
      record.state = 'declined';
      const content = `<h1>Sign-in declined</h1><p class="app">You declined to sign in to <strong>${escapeHtml(record.clientId)}</strong> on your device. You can close this window.</p>`;
      sendHtml(res, 200, page('Sign-in declined', content));
      return;
    }
    const account = (form.get('account') ?? '').trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(account)) {
      this.deviceLoginPage(res, userCode, 'Enter a valid email address, phone number, or Skype name.', 400);
      return;
    }
    this.approve(record, account);
    const content = `<h1>You're signed in</h1><p class="app">You have signed in to <strong>${escapeHtml(record.clientId)}</strong> on your device as <strong>${escapeHtml(account)}</strong>. You may now close this window.</p>`;
    sendHtml(res, 200, page('Signed in', content));
  }

  private signInPage(
    res: ServerResponse,
    tenant: string,
    params: URLSearchParams,
    client: SimulatorClient,
    account: string,
    error?: string,
  ): void {
    const hidden = [...params]
      .filter(([name]) => !['account', 'action', 'signin', 'cancel'].includes(name))
      .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
      .join('\n');
    const action = `${this.prefix}/${encodeURIComponent(tenant)}/oauth2/v2.0/authorize`;
    const content = `<div class="banner">Sandbox: a simulated Microsoft Entra ID sign-in. No password is asked.</div>
<h1>Sign in</h1>
<p class="app">to continue to <strong>${escapeHtml(client.clientId)}</strong>,
which asks for: <code>${escapeHtml(params.get('scope') ?? '')}</code></p>
<form method="post" action="${escapeHtml(action)}">
${hidden}
${error ? `<p class="err" id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<label for="account">Email, phone, or Skype</label>
<input type="email" name="account" id="account" value="${escapeHtml(account)}" autocomplete="username" autofocus>
<div class="buttons">
<button type="submit" name="cancel" value="Cancel" id="cancel" class="secondary" formnovalidate>Cancel</button>
<button type="submit" name="signin" value="Sign in" id="signin" class="primary">Sign in</button>
</div>
</form>`;
    // Custom-scheme redirect URIs have the origin 'null', which CSP cannot name.
    const origin = new URL(params.get('redirect_uri') ?? '').origin;
    sendHtml(res, 200, page('Sign in to your account', content), origin === 'null' ? '' : origin);
  }
}

// ---- helpers (no state) ----------------------------------------------------------------------

type Route =
  | { endpoint: 'authorize' | 'token' | 'devicecode'; tenant: string }
  | { endpoint: 'resource'; tenant?: never }
  | { endpoint: 'devicelogin'; tenant?: never };

function matchRoute(path: string): Route | undefined {
  if (path === '/graph/v1.0/me') return { endpoint: 'resource' };
  if (path === '/devicelogin') return { endpoint: 'devicelogin' };
  const match = /^\/([^/]+)\/oauth2\/v2\.0\/(authorize|token|devicecode)$/.exec(path);
  if (!match) return undefined;
  let tenant = match[1]!;
  try {
    tenant = decodeURIComponent(tenant);
  } catch {
    // A malformed escape is just a tenant that does not exist.
  }
  return { endpoint: match[2] as 'authorize' | 'token' | 'devicecode', tenant };
}

function newUserCode(): string {
  const bytes = randomBytes(USER_CODE_LENGTH);
  return [...bytes].map((b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]).join('');
}

/** People type codes in any case, with spaces or dashes. */
const normalizeUserCode = (code: string) => code.toUpperCase().replace(/[\s-]+/g, '');

function appNotFound(clientId: string, tenant: string): string {
  return `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`;
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

/** Refresh tokens are kept by hash, so a persisted state holds nothing that redeems. */
const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');

const splitScopes = (value: string | null): string[] => (value ?? '').split(/\s+/).filter(Boolean);

/**
 * One access token is for one resource. Graph permissions may be short (`User.Read`); others are
 * `{resource}/{permission}`. At code redemption the first resource wins, as in Entra; a refresh
 * naming two resources is refused (AADSTS28000).
 */
function resolveScopes(scopes: string[], multi: 'first' | 'single') {
  const oidc: string[] = [];
  const byResource = new Map<string, string[]>();
  for (const scope of scopes) {
    if (OIDC_SCOPES.has(scope.toLowerCase())) {
      oidc.push(scope.toLowerCase());
      continue;
    }
    const uri = /^((?:https:\/\/|api:\/\/)[^\s/]+(?:\/[^\s/]+)*|[0-9a-f-]{36})\/([A-Za-z0-9._-]+)$/i.exec(
      scope,
    );
    const short = /^[A-Za-z][A-Za-z0-9._-]*$/.test(scope);
    if (!uri && !short) {
      const message = `The provided value for the input parameter 'scope' isn't valid. The scope ${scope} isn't valid.`;
      throw new EntraError('invalid_scope', 70011, message);
    }
    const resource = uri ? uri[1]!.replace(/\/$/, '') : GRAPH;
    const permission = uri ? uri[2]! : scope;
    byResource.set(resource, [...(byResource.get(resource) ?? []), permission]);
  }
  if (multi === 'single' && byResource.size > 1) {
    const message = `Provided value for the input parameter scope '${scopes.join(' ')}' is not valid because it contains more than one resource. Scope ${scopes.join(' ')} is not valid.`;
    throw new EntraError('invalid_scope', 28000, message);
  }
  const [first] = byResource;
  return { resource: first?.[0] ?? GRAPH, permissions: first?.[1] ?? [], oidc };
}

/** A stable made-up person per account: same oid every sign-in, pairwise `sub` per audience. */
function identity(grant: Grant) {
  const hash = (text: string) => createHash('sha256').update(text).digest();
  const digest = hash(`${grant.tid}|${grant.account.toLowerCase()}`).toString('hex');
  const oid = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-4${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  const local = grant.account.split('@')[0] ?? grant.account;
  const name = local
    .split(/[._-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');
  return {
    oid,
    name,
    subFor: (audience: string) => hash(`${oid}|${audience}`).toString('base64url').slice(0, 43),
  };
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

function parseBasicAuth(header: string | undefined): { id: string; secret: string } | undefined {
  const encoded = /^Basic\s+(\S+)$/i.exec(header ?? '')?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}

const headerValue = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const isForm = (req: IncomingMessage) =>
  (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');

/** The body as text, or undefined when larger than any real OAuth request. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, headers);
  res.end(body);
}

/** Entra sends these on every token answer, errors included. */
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };
const JSON_TYPE = { 'Content-Type': 'application/json; charset=utf-8' };

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) {
  send(res, status, { ...JSON_TYPE, ...NO_STORE, ...headers }, JSON.stringify(body));
}

/** Appends the parameters to the redirect URI's own query, as Entra does (`null` values are left out). */
function redirect(res: ServerResponse, redirectUri: string, params: Record<string, string | null>): void {
  const target = new URL(redirectUri);
  for (const [name, value] of Object.entries(params))
    if (value !== null) target.searchParams.set(name, value);
  send(res, 302, { Location: target.toString(), ...NO_STORE }, '');
}

/** A page with no external resources; its one inline style is allowed by nonce, scripts not at all. */
function sendHtml(res: ServerResponse, status: number, html: (nonce: string) => string, formTarget = '') {
  const nonce = randomBytes(16).toString('base64');
  // The sign-in form posts to 'self', which then redirects to the app: form-action must allow both.
  const csp = `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'${formTarget ? ` ${formTarget}` : ''}; frame-ancestors 'none'; base-uri 'none'`;
  const security = {
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
  const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': csp, ...security };
  send(res, status, { ...headers, ...NO_STORE }, html(nonce));
}

const LOGO = `<svg width="108" height="24" viewBox="0 0 108 24" aria-hidden="true"><rect width="10" height="10" fill="#f25022"/><rect x="11" width="10" height="10" fill="#7fba00"/><rect y="11" width="10" height="10" fill="#00a4ef"/><rect x="11" y="11" width="10" height="10" fill="#ffb900"/><text x="28" y="16" font-family="Segoe UI, sans-serif" font-size="14" fill="#737373">Entra ID · sandbox</text></svg>`;

function page(title: string, content: string): (nonce: string) => string {
  return (nonce) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
body{margin:0;min-height:100vh;background:#f2f2f2;font-family:"Segoe UI",-apple-system,Helvetica,Arial,sans-serif;color:#1b1b1b;display:flex;align-items:center;justify-content:center}
main{background:#fff;width:100%;max-width:440px;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2);box-sizing:border-box}
h1{font-size:24px;font-weight:600;margin:16px 0 12px}
label{display:block;font-size:13px;color:#605e5c;margin-top:16px}
input[type=email]{width:100%;border:0;border-bottom:1px solid #666;padding:6px 0;font-size:15px;outline:none;box-sizing:border-box}
input[type=email]:focus{border-bottom-color:#0067b8}
.buttons{display:flex;justify-content:flex-end;gap:8px;margin-top:28px}
button{min-width:108px;padding:6px 12px;font-size:15px;border:0;cursor:pointer}
.primary{background:#0067b8;color:#fff}.secondary{background:#ccc;color:#1b1b1b}
.banner{background:#fff4ce;font-size:13px;padding:8px;margin:16px 0 0}
.err{color:#e81123;font-size:13px;word-break:break-word}.app{font-size:13px}code{word-break:break-all}
</style></head>
<body><main>${LOGO}
${content}
</main></body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

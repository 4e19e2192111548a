/**
 * A Microsoft Entra ID (identity platform v2) simulator: authorize (with a sign-in page that works
 * without JavaScript), device authorization (`/devicecode` and a `/devicelogin` page where a person
 * enters the user code), token (authorization_code + PKCE, device_code, refresh_token with rotation)
 * and a protected resource (`GET /graph/v1.0/me`). It answers in Entra's own formats (AADSTS error
 * bodies, redirect errors, Graph's 401) so the broker's provider code is exercised as in production.
 *
 * It serves the `npm start` sandbox (mounted under a prefix in the embedded host); the e2e tests run
 * it standalone through a subclass in test/fakes that adds fault injection and counters on the one
 * `intercept` seam below. It never logs: everything it handles is a secret of some kind.
 *
 * This file routes; each concern has its own file in ./entra/.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize } from './entra/authorize.js';
import type { SimulatorApi, SimulatorClient, SimulatorContext, SimulatorRequest } from './entra/context.js';
import { DeviceAuthorizations } from './entra/device.js';
import { deviceAuthorization, deviceLogin } from './entra/device-endpoints.js';
import { EntraError, entraErrorBody } from './entra/errors.js';
import { GrantStore } from './entra/grants.js';
import { me } from './entra/graph.js';
import { type Answer, answer, headerValue, isForm, jsonAnswer, readBody, send } from './entra/http.js';
import { errorPage } from './entra/pages.js';
import { JwtSigner } from './entra/signing.js';
import type { SimulatorPersistence } from './entra/state-file.js';
import { token } from './entra/token.js';
import { TokenIssuer } from './entra/tokens.js';

export type {
  SimulatorApi,
  SimulatorClient,
  SimulatorEndpoint,
  SimulatorFederatedCredential,
  SimulatorRequest,
} from './entra/context.js';
export type { Answer } from './entra/http.js';

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
  /** APIs that apps may get client credentials tokens for (the broker's own app registration). */
  apis?: SimulatorApi[];
  /**
   * Keeps grants across restarts (the `npm start` sandbox): called with the state after every change
   * and read once at construction. Refresh tokens appear in it only as SHA-256 hashes.
   */
  persistence?: SimulatorPersistence;
}

const DEFAULT_TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';
/** The tenant every personal Microsoft account lives in. */
const CONSUMERS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class EntraSimulator {
  // Protected, not private: the world outside the protocol (an admin revoking a grant, a secret
  // expiring, a person at the device page) is played by a test fake's subclass through these.
  /** App registrations by client id. */
  protected readonly clients = new Map<string, SimulatorClient>();
  protected readonly grants: GrantStore;
  protected readonly devices: DeviceAuthorizations;
  /** Signs every token; its public keys are the tenant's JWKS (a test fake rolls them). */
  protected readonly signer: JwtSigner;
  private readonly now: () => number;
  private readonly prefix: string;
  private readonly tenantId: string;
  private readonly ctx: SimulatorContext;

  constructor(options: EntraSimulatorOptions) {
    this.prefix = (options.prefix ?? '').replace(/\/+$/, '');
    for (const client of options.clients) this.registerClient(client);
    this.tenantId = options.tenantId ?? DEFAULT_TENANT_ID;
    this.now = options.now ?? Date.now;
    this.grants = new GrantStore(this.now, options.persistence);
    this.devices = new DeviceAuthorizations(this.grants, this.now, {
      lifetimeSec: options.deviceCodeLifetimeSec ?? 900,
      intervalSec: options.devicePollIntervalSec ?? 5,
    });
    const signer = new JwtSigner();
    this.signer = signer;
    const apis = new Map((options.apis ?? []).map((api) => [api.appId, api]));
    const prefixed = this.prefix;
    const issuerBase = (req: SimulatorRequest) =>
      `http://${headerValue(req.headers, 'host') ?? 'localhost'}${prefixed}`;
    const tokens = new TokenIssuer(signer, this.grants, this.now, options.accessTokenLifetimeSec ?? 3600);
    const { prefix, now, clients, grants, devices } = this;
    this.ctx = { prefix, now, clients, grants, devices, tokens, signer, apis, issuerBase };
  }

  /** Adds or replaces an app registration (tests learn the broker's redirect URI after starting it). */
  registerClient(client: SimulatorClient): void {
    this.clients.set(client.clientId, { ...client, redirectUris: [...client.redirectUris] });
  }

  /** Adds or replaces an API that apps may get client credentials tokens for. */
  registerApi(api: SimulatorApi): void {
    this.ctx.apis.set(api.appId, { ...api });
  }

  /** Handles the request if its path is under the prefix; returns false otherwise (so a host can fall through). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const { pathname } = url;
    if (this.prefix && pathname !== this.prefix && !pathname.startsWith(`${this.prefix}/`)) return false;
    this.serve(req, res, url, pathname.slice(this.prefix.length)).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('simulator error');
    });
    return true;
  }

  /**
   * The one seam for test fakes: sees every routed request (body read) before the protocol does,
   * and may answer it itself, delay it, or look at the protocol's answer by calling `next`.
   * Resolving to undefined sends nothing (the caller went away). The sandbox keeps this default.
   */
  protected intercept(
    _request: SimulatorRequest,
    next: () => Answer,
  ): Answer | undefined | Promise<Answer | undefined> {
    return next();
  }

  private async serve(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const route = matchRoute(path);
    if (!route) return send(res, answer(404, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Not found'));
    const body = req.method === 'POST' ? await readBody(req) : '';
    if (body === undefined) return send(res, answer(413));
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const request: SimulatorRequest = {
      ...route,
      method: req.method ?? 'GET',
      url,
      form: new URLSearchParams(isForm(req) ? body : ''),
      headers: req.headers,
      signal: gone.signal,
    };
    const result = await this.intercept(request, () => this.protocolAnswer(request));
    if (result) send(res, result);
  }

  /** The protocol: the request's endpoint, with Entra's errors rendered as that endpoint renders them. */
  private protocolAnswer(req: SimulatorRequest): Answer {
    const correlationId = headerValue(req.headers, 'client-request-id') ?? randomUUID();
    try {
      if (req.endpoint === 'resource') return me(this.ctx, req, correlationId);
      if (req.endpoint === 'keys')
        return jsonAnswer(200, this.ctx.signer.jwks(), { 'Cache-Control': 'max-age=86400' });
      // The pages are GET (show) and POST (submit); the rest are POST only, with Entra's own error.
      const page = req.method === 'GET' || req.method === 'POST';
      const notAllowed = answer(405, { Allow: 'GET, POST' });
      if (req.endpoint === 'devicelogin') return page ? deviceLogin(this.ctx, req) : notAllowed;
      const tid = this.tidFor(req.tenant ?? '');
      if (req.endpoint === 'authorize')
        return page ? authorize(this.ctx, req, tid, correlationId) : notAllowed;
      if (req.method !== 'POST') {
        const message = `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`;
        throw new EntraError('invalid_request', 900561, message);
      }
      if (req.endpoint === 'devicecode') return deviceAuthorization(this.ctx, req, tid);
      return token(this.ctx, req, tid);
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      const body = entraErrorBody(err, correlationId, this.now());
      // Errors escaping authorize are shown to the person: there is no trusted redirect URI yet.
      if (req.endpoint === 'authorize') return errorPage(body.error_description);
      return jsonAnswer(err.status, body);
    }
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
}

type Route =
  | { endpoint: 'authorize' | 'token' | 'devicecode' | 'keys'; tenant: string }
  | { endpoint: 'resource' | 'devicelogin'; tenant?: never };

function matchRoute(path: string): Route | undefined {
  if (path === '/graph/v1.0/me') return { endpoint: 'resource' };
  if (path === '/devicelogin') return { endpoint: 'devicelogin' };
  const keys = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(path);
  if (keys) return { endpoint: 'keys', tenant: keys[1]! };
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

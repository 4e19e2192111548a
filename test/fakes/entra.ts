/**
 * The sandbox's Entra simulator with what only tests need: injected failures and delays, counters,
 * the list of every secret it issued (for the leak scans), and switches that kill grants or play
 * the person at the device login page. All of it rides on the simulator's one `intercept` seam or
 * on the state it models (grants, clients, device authorizations); nothing of it ships.
 *
 * `startEntraSimulator` serves it standalone on 127.0.0.1 (random port), for tests that drive it
 * over real HTTP. `url` is the authority, prefix included (`{url}/{tenant}/oauth2/v2.0/token`,
 * `{url}/graph/v1.0/me`).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_ACCOUNT } from '../../src/local/sandbox/entra/authorize.js';
import { DEVICE_CODE_GRANT, type DeviceRecord } from '../../src/local/sandbox/entra/device.js';
import {
  type Answer,
  EntraSimulator,
  type EntraSimulatorOptions,
  type SimulatorEndpoint,
  type SimulatorRequest,
} from '../../src/local/sandbox/entra-simulator.js';

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
  /** Fetches of the tenant's signing keys (JWKS). */
  keyRequests: number;
}

/** What the device flow answers a poll it looked at (RFC 8628 §3.5, and Entra's unknown code); else tokens. */
const DEVICE_POLL_ERRORS = new Set([
  'authorization_pending',
  'slow_down',
  'authorization_declined',
  'expired_token',
  'bad_verification_code',
]);
/** The tenant of seeded grants (any GUID: the broker's connections say `organizations`). */
const SEEDED_TID = '72f988bf-0000-4000-8000-000000005eed';
const ISSUED_FIELDS = ['access_token', 'refresh_token', 'id_token', 'device_code'];
const perEndpoint = <T>(): Record<SimulatorEndpoint, T[]> => ({
  token: [],
  authorize: [],
  resource: [],
  devicecode: [],
  devicelogin: [],
  keys: [],
});

export class TestEntraSimulator extends EntraSimulator {
  readonly stats: SimulatorStats = {
    tokenRequests: 0,
    byGrant: {},
    refreshRedemptions: new Map(),
    reuseDetected: 0,
    devicePolls: 0,
    earlyPolls: 0,
    keyRequests: 0,
  };
  /** Every token request's form and whether it carried an `Authorization` header, in order. */
  readonly tokenRequests: Array<{ form: Record<string, string>; basicAuth: boolean }> = [];
  private readonly issued: string[] = [];
  private readonly faults = perEndpoint<InjectedResponse>();
  private readonly hangs = perEndpoint<number>();

  /** The next `times` requests to `endpoint` answer `response` instead (429 + Retry-After, 503, HTML...). */
  failNext(endpoint: SimulatorEndpoint, response: InjectedResponse, times = 1): void {
    for (let i = 0; i < times; i++) this.faults[endpoint].push(response);
  }

  /** The next `times` requests to `endpoint` wait `ms` first; if the caller gives up meanwhile, they are dropped unprocessed. */
  hangNext(endpoint: SimulatorEndpoint, ms: number, times = 1): void {
    for (let i = 0; i < times; i++) this.hangs[endpoint].push(ms);
  }

  /** Existing grants of `account` (or all) answer invalid_grant AADSTS50173; a new sign-in works again. */
  /** A JWT signed with the tenant's current key, with any claims: for tokens Entra would not issue. */
  signToken(claims: Record<string, unknown>): string {
    return this.signer.sign(claims);
  }

  /** Entra's key rollover: a new key signs; the old one stays in the JWKS unless `retire`d. */
  rollSigningKey(options: { retire?: boolean } = {}): void {
    this.signer.roll(options);
  }

  /**
   * A consent given as if through the sign-in page, without the round trip: its first refresh token.
   * For benches that seed thousands of grants.
   */
  seedGrant(clientId: string, account: string, scopes: string[], tid = SEEDED_TID): string {
    const grant = this.grants.add({ clientId, account, tid, scopes: [...scopes, 'offline_access'] });
    return this.grants.issueRefreshToken(grant);
  }

  revokeGrants(account?: string): void {
    this.grants.setState('revoked', account);
  }

  /** Existing grants answer invalid_grant AADSTS700082 (refresh token inactive for 90 days). */
  expireInactive(account?: string): void {
    this.grants.setState('inactive', account);
  }

  /** Existing grants answer interaction_required AADSTS50076 (MFA needed). */
  requireMfa(account?: string): void {
    this.grants.setState('mfa', account);
  }

  /** Existing grants answer invalid_grant AADSTS65001 with suberror consent_required. */
  requireConsent(account?: string): void {
    this.grants.setState('consent', account);
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
    this.devices.approve(this.pendingDevice(userCode), account);
  }

  /** The person enters `userCode` and then declines; the device's next poll hears authorization_declined. */
  declineDevice(userCode: string): void {
    this.devices.decline(this.pendingDevice(userCode));
  }

  /** Lifetime and polling interval of device codes issued from now on (e.g. a 1 s interval for a real browser). */
  setDeviceTiming(timing: { lifetimeSec?: number; intervalSec?: number }): void {
    this.devices.timing.lifetimeSec = timing.lifetimeSec ?? this.devices.timing.lifetimeSec;
    this.devices.timing.intervalSec = timing.intervalSec ?? this.devices.timing.intervalSec;
  }

  /** Every access token, refresh token, id token, code and device code it answered: tests scan logs and files for them. */
  issuedSecrets(): string[] {
    return [...this.issued];
  }

  /** Counts, then delays and injected failures, else the simulator's own answer (which it reads). */
  protected override async intercept(
    request: SimulatorRequest,
    next: () => Answer,
  ): Promise<Answer | undefined> {
    if (request.endpoint === 'keys') this.stats.keyRequests++;
    if (request.endpoint === 'token') {
      this.stats.tokenRequests++;
      this.tokenRequests.push({
        form: Object.fromEntries(request.form),
        basicAuth: request.headers.authorization !== undefined,
      });
      const grantType = request.form.get('grant_type');
      if (grantType) this.stats.byGrant[grantType] = (this.stats.byGrant[grantType] ?? 0) + 1;
    }
    const hang = this.hangs[request.endpoint].shift();
    if (hang !== undefined && !(await waitUnlessGone(request.signal, hang))) return undefined;
    const fault = this.faults[request.endpoint].shift();
    if (fault) return { status: fault.status, headers: fault.headers ?? {}, body: fault.body ?? '' };
    const answer = next();
    this.observe(request, answer);
    return answer;
  }

  private observe(request: SimulatorRequest, answer: Answer): void {
    if (request.endpoint === 'authorize') {
      const code = answer.headers.Location && new URL(answer.headers.Location).searchParams.get('code');
      if (code) this.issued.push(code);
      return;
    }
    if (request.endpoint !== 'token' && request.endpoint !== 'devicecode') return;
    if (!answer.headers['Content-Type']?.startsWith('application/json')) return;
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    for (const field of ISSUED_FIELDS) if (typeof body[field] === 'string') this.issued.push(body[field]);
    if (request.endpoint !== 'token') return;
    const grantType = request.form.get('grant_type');
    const polled = answer.status === 200 || DEVICE_POLL_ERRORS.has(String(body.error));
    if (grantType === DEVICE_CODE_GRANT && polled) {
      this.stats.devicePolls++;
      if (body.error === 'slow_down') this.stats.earlyPolls++;
    }
    const refreshToken = request.form.get('refresh_token');
    if (grantType === 'refresh_token' && refreshToken && answer.status === 200) {
      const redemptions = (this.stats.refreshRedemptions.get(refreshToken) ?? 0) + 1;
      this.stats.refreshRedemptions.set(refreshToken, redemptions);
      // Entra tolerates reuse of a rotated-out token for a while; count it so tests can assert it never happens.
      if (redemptions > 1) this.stats.reuseDetected++;
    }
  }

  private pendingDevice(userCode: string): DeviceRecord {
    const record = this.devices.awaitingPerson(userCode);
    if (!record) throw new Error('no pending device authorization has this user code');
    return record;
  }
}

/** Resolves true after `ms`, or false as soon as the caller goes away. */
function waitUnlessGone(signal: AbortSignal, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onGone = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onGone);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onGone, { once: true });
  });
}

export interface EntraFake {
  /** e.g. `http://127.0.0.1:41234`: the authority; the tenant goes in the path. */
  url: string;
  sim: TestEntraSimulator;
  close(): Promise<void>;
}

/** Starts a simulator; `clients` may be empty and registered later with `sim.registerClient`. */
export async function startEntraSimulator(options: Partial<EntraSimulatorOptions> = {}): Promise<EntraFake> {
  const prefix = options.prefix ?? '';
  const sim = new TestEntraSimulator({ clients: [], ...options });
  const server = createServer((req, res) => {
    if (!sim.handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    sim,
    // Kept-alive and hung connections would hold close() open; end them first.
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

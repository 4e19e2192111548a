/**
 * An Azure Key Vault (secrets data plane) simulator, faithful to the documented REST API as far as the
 * broker and `@azure/keyvault-secrets` use it, served over HTTPS on 127.0.0.1 so the real
 * `SecretClient` talks to it unchanged:
 *
 * - `PUT /secrets/{name}` set (a new version), `GET /secrets/{name}[/{version}]` get,
 *   `GET /secrets` list, `GET /secrets/{name}/versions` list versions, `PATCH /secrets/{name}/{version}`
 *   update attributes and tags, `DELETE /secrets/{name}` soft-delete, `GET|DELETE /deletedsecrets/{name}`
 *   get / purge a deleted secret, `POST /deletedsecrets/{name}/recover`, `GET /deletedsecrets`.
 * - `api-version` is required; list pages hold at most `maxresults` (≤ 25) items and chain by `nextLink`.
 * - Bundles carry `id` (`{vault}/secrets/{name}/{version}`), `attributes` in unix seconds, `tags`;
 *   names are case-insensitive; tag and value limits as documented (15 tags, 512/256 characters, 25 KB).
 * - Errors are `{"error": {"code", "message", "innererror"?}}`: 404 `SecretNotFound`, 403 `Forbidden`
 *   (`SecretDisabled`, `ForbiddenByRbac`), 409 `Conflict` (`ObjectIsDeletedButRecoverable`) when a
 *   soft-deleted name is set again, 400 `BadParameter`.
 * - A request without a bearer token gets the 401 challenge (`WWW-Authenticate: Bearer
 *   authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"`)
 *   the SDK answers by asking its credential for `https://vault.azure.net/.default`.
 *
 * Test controls: injected responses (429 + `Retry-After`, 5xx), hung requests, access denial (403
 * `ForbiddenByRbac`), and request counts per operation, which the cost tests assert.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { loadSettings } from '../../src/lib/config/settings.js';
import type { KeyVaultSecretStore, KeyVaultSecretStoreOptions } from '../../src/lib/store/keyvault-store.js';
import { openStore } from '../../src/lib/store/open-store.js';
import { testTls } from './tls.js';

export type KeyVaultOperation =
  | 'set'
  | 'get'
  | 'list'
  | 'listVersions'
  | 'update'
  | 'delete'
  | 'getDeleted'
  | 'listDeleted'
  | 'recover'
  | 'purge';

export interface KeyVaultFault {
  status: number;
  headers?: Record<string, string>;
  /** Default: the service's JSON error for the status. */
  body?: string | object;
}

export interface KeyVaultStats {
  /** Authenticated requests per operation, whatever they were answered (faults included). */
  byOperation: Partial<Record<KeyVaultOperation, number>>;
  /** Requests without a token, answered with the 401 challenge. */
  challenges: number;
  /** Requests with a wrong token. */
  unauthorized: number;
  apiVersions: Set<string>;
  /** Requests answered 429 because they were beyond `limits`. */
  throttled: number;
}

export interface KeyVaultSimulatorOptions {
  /** Epoch ms for `created`/`updated`, and the clock of `limits`; default `Date.now`. */
  now?: () => number;
  /**
   * The vault's service limits, enforced like Key Vault does: authenticated requests beyond them in
   * any 10 seconds answer 429 `Throttled` with `Retry-After`, and, as documented, do not count
   * themselves. Default: none.
   */
  limits?: { transactionsPer10s: number; writesPer10s?: number };
  /** The only bearer token the vault accepts; default random. */
  accessToken?: string;
  tenantId?: string;
  /**
   * Purge protection, as the Bicep deploys the vault: a deleted secret can be recovered but not
   * purged (403 `Forbidden`) until its retention ends, so its name is reusable only by recovering it.
   */
  purgeProtection?: boolean;
}

const SUPPORTED_API_VERSIONS = new Set(['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01']);
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_TAGS = 15;
const MAX_TAG_NAME = 512;
const MAX_TAG_VALUE = 256;
const MAX_VALUE_BYTES = 25 * 1024;
const MAX_PAGE = 25;
const RECOVERABLE_DAYS = 90;

interface Version {
  id: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

interface Secret {
  name: string;
  /** Creation order. */
  versions: Version[];
}

interface Deleted {
  secret: Secret;
  deletedDate: number;
  scheduledPurgeDate: number;
}

class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly inner?: string,
  ) {
    super(message);
  }
}

const notFound = (what: string) =>
  new KvError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
const badParameter = (message: string) => new KvError(400, 'BadParameter', message);

function defaultFaultBody(status: number): object {
  if (status === 429) {
    return {
      error: {
        code: 'Throttled',
        message:
          'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
      },
    };
  }
  if (status === 503)
    return { error: { code: 'ServiceUnavailable', message: 'The service is unavailable.' } };
  if (status >= 500)
    return { error: { code: 'InternalServerError', message: 'An unexpected error occurred.' } };
  return { error: { code: 'BadRequest', message: 'The request was rejected.' } };
}

export class KeyVaultSimulator {
  readonly stats: KeyVaultStats = {
    byOperation: {},
    challenges: 0,
    unauthorized: 0,
    apiVersions: new Set(),
    throttled: 0,
  };
  readonly accessToken: string;
  readonly tenantId: string;
  private readonly now: () => number;
  private readonly secrets = new Map<string, Secret>();
  private readonly deleted = new Map<string, Deleted>();
  private faults: Array<{ op: KeyVaultOperation | '*'; fault: KeyVaultFault }> = [];
  private hangs: Array<KeyVaultOperation | '*'> = [];
  private denial?: string;
  private readonly hung = new Set<ServerResponse>();
  private limits?: { transactionsPer10s: number; writesPer10s?: number };
  /** Times of the requests served in the last 10 s (all, and writes), oldest first. */
  private readonly served = { all: [] as number[], writes: [] as number[] };
  private readonly purgeProtection: boolean;

  constructor(
    private readonly baseUrl: () => string,
    options: KeyVaultSimulatorOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.limits = options.limits;
    this.accessToken = options.accessToken ?? `kv-test-token-${randomBytes(12).toString('hex')}`;
    this.tenantId = options.tenantId ?? randomUUID();
    this.purgeProtection = options.purgeProtection ?? false;
  }

  // ---- test controls -------------------------------------------------------------------------

  /** The next `times` authenticated requests for `op` (or any, `*`) answer `fault` instead. */
  failNext(op: KeyVaultOperation | '*', fault: KeyVaultFault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ op, fault });
  }

  /** The next `times` authenticated requests for `op` (or any) are read and never answered. */
  hangNext(op: KeyVaultOperation | '*', times = 1): void {
    for (let i = 0; i < times; i++) this.hangs.push(op);
  }

  /** Every authenticated request answers 403 `Forbidden` with this inner code, until `allowAccess`. */
  denyAccess(innerCode = 'ForbiddenByRbac'): void {
    this.denial = innerCode;
  }

  allowAccess(): void {
    this.denial = undefined;
  }

  /** Enforces these service limits from now on (none: undefined), counting from an empty window. */
  enforceLimits(limits: KeyVaultSimulatorOptions['limits']): void {
    this.limits = limits;
    this.served.all = [];
    this.served.writes = [];
  }

  /** Drops pending faults, hangs and denial (requests already hung stay hung). */
  clearFaults(): void {
    this.faults = [];
    this.hangs = [];
    this.denial = undefined;
  }

  /** Forgets every secret, deleted secret, fault and count. */
  reset(): void {
    this.secrets.clear();
    this.deleted.clear();
    this.clearFaults();
    this.resetStats();
  }

  resetStats(): void {
    this.stats.byOperation = {};
    this.stats.challenges = 0;
    this.stats.unauthorized = 0;
    this.stats.throttled = 0;
    this.stats.apiVersions.clear();
  }

  /** Authenticated requests for `op` so far (all operations when omitted). */
  calls(op?: KeyVaultOperation): number {
    if (op) return this.stats.byOperation[op] ?? 0;
    return Object.values(this.stats.byOperation).reduce((a, b) => a + (b ?? 0), 0);
  }

  /** A copy of the counts per operation, for before/after comparisons. */
  snapshot(): Partial<Record<KeyVaultOperation, number>> {
    return { ...this.stats.byOperation };
  }

  /** Counts since `before` (operations with no calls left out). */
  since(before: Partial<Record<KeyVaultOperation, number>>): Partial<Record<KeyVaultOperation, number>> {
    const out: Partial<Record<KeyVaultOperation, number>> = {};
    for (const [op, n] of Object.entries(this.stats.byOperation) as Array<[KeyVaultOperation, number]>) {
      const d = n - (before[op] ?? 0);
      if (d > 0) out[op] = d;
    }
    return out;
  }

  /** Every version of a secret, oldest first, values included (what the vault holds), or undefined. */
  versionsOf(
    name: string,
  ): Array<{ version: string; value: string; enabled: boolean; tags: Record<string, string> }> | undefined {
    const secret = this.secrets.get(name.toLowerCase());
    return secret?.versions.map((v) => ({
      version: v.id,
      value: v.value,
      enabled: v.enabled,
      tags: { ...v.tags },
    }));
  }

  isDeleted(name: string): boolean {
    return this.deleted.has(name.toLowerCase());
  }

  /** Hung requests are ended (socket destroyed) so servers can close. */
  releaseHung(): void {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
  }

  /**
   * Under `limits`: undefined when the request may be served (and is then counted), else the ms
   * until the oldest request in the full window leaves it.
   */
  private overLimit(write: boolean): number | undefined {
    if (!this.limits) return undefined;
    const now = this.now();
    const windows: Array<[number[], number | undefined]> = [
      [this.served.all, this.limits.transactionsPer10s],
      [this.served.writes, write ? this.limits.writesPer10s : undefined],
    ];
    let wait: number | undefined;
    for (const [times, limit] of windows) {
      while (times.length > 0 && times[0]! <= now - 10_000) times.shift();
      if (limit !== undefined && times.length >= limit) wait = Math.max(wait ?? 0, times[0]! + 10_000 - now);
    }
    if (wait !== undefined) return wait;
    this.served.all.push(now);
    if (write) this.served.writes.push(now);
    return undefined;
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.dispatch(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(defaultFaultBody(500)));
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', this.baseUrl());
    const clientRequestId = req.headers['x-ms-client-request-id'];
    const headers: Record<string, string> = {
      'Cache-Control': 'no-cache',
      'x-ms-keyvault-service-version': '1.9.2488.1',
      'x-ms-keyvault-region': 'local',
      'x-ms-request-id': randomUUID(),
    };
    if (typeof clientRequestId === 'string') headers['x-ms-client-request-id'] = clientRequestId;
    const reply = (status: number, json?: unknown, extra: Record<string, string> = {}) => {
      const all = { ...headers, ...extra };
      if (json === undefined) {
        res.writeHead(status, all);
        res.end();
        return;
      }
      const text = typeof json === 'string' ? json : JSON.stringify(json);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...all });
      res.end(text);
    };
    const error = (e: KvError) =>
      reply(e.status, {
        error: { code: e.code, message: e.message, ...(e.inner ? { innererror: { code: e.inner } } : {}) },
      });

    // Authentication first: the SDK's first request of a client carries no token (and no body) on purpose.
    const auth = req.headers.authorization;
    const challenge = {
      'WWW-Authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="https://vault.azure.net"`,
    };
    if (!auth) {
      this.stats.challenges++;
      return reply(
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        challenge,
      );
    }
    if (auth !== `Bearer ${this.accessToken}`) {
      this.stats.unauthorized++;
      return reply(
        401,
        {
          error: {
            code: 'Unauthorized',
            message: 'AKV10032: Invalid issuer. Expected one of the issuers of the vault tenant.',
          },
        },
        challenge,
      );
    }

    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion)
      return error(badParameter('The request is missing the required api-version query parameter.'));
    if (!SUPPORTED_API_VERSIONS.has(apiVersion)) {
      return error(
        badParameter(
          `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (2025-07-01).`,
        ),
      );
    }
    this.stats.apiVersions.add(apiVersion);

    const route = matchRoute(req.method ?? 'GET', url.pathname);
    if (!route)
      return reply(404, { error: { code: 'NotFound', message: 'The requested resource was not found.' } });
    this.stats.byOperation[route.op] = (this.stats.byOperation[route.op] ?? 0) + 1;

    const wait = this.overLimit(route.op === 'set');
    if (wait !== undefined) {
      this.stats.throttled++;
      return reply(429, defaultFaultBody(429), {
        'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))),
      });
    }

    const hang = this.hangs.findIndex((op) => op === '*' || op === route.op);
    if (hang >= 0) {
      this.hangs.splice(hang, 1);
      this.hung.add(res);
      res.on('close', () => this.hung.delete(res));
      return;
    }
    const fault = this.faults.findIndex((f) => f.op === '*' || f.op === route.op);
    if (fault >= 0) {
      const { fault: f } = this.faults.splice(fault, 1)[0]!;
      return reply(f.status, f.body ?? defaultFaultBody(f.status), f.headers ?? {});
    }
    if (this.denial) {
      return error(
        new KvError(
          403,
          'Forbidden',
          `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=00000000-0000-0000-0000-000000000000;oid=00000000-0000-0000-0000-000000000000;iss=https://sts.windows.net/${this.tenantId}/\r\nAction: 'Microsoft.KeyVault/vaults/secrets/${route.op}/action'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/broker/providers/microsoft.keyvault/vaults/simulated'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\nVault: simulated;location=local\r\n`,
          this.denial,
        ),
      );
    }

    try {
      if (route.name !== undefined && !NAME.test(route.name)) {
        throw badParameter(`The request URI contains an invalid name: ${route.name.slice(0, 40)}`);
      }
      const result = this.execute(route, url, apiVersion, body);
      reply(result.status, result.json);
    } catch (e) {
      if (e instanceof KvError) return error(e);
      throw e;
    }
  }

  private execute(
    route: Route,
    url: URL,
    apiVersion: string,
    body: string,
  ): { status: number; json?: unknown } {
    const name = route.name ?? '';
    const key = name.toLowerCase();
    switch (route.op) {
      case 'set': {
        const input = parseJson(body);
        if (typeof input.value !== 'string')
          throw badParameter('Property value is required and must be a string.');
        if (Buffer.byteLength(input.value, 'utf8') > MAX_VALUE_BYTES) {
          throw badParameter(`The secret value exceeds the maximum size of ${MAX_VALUE_BYTES} bytes.`);
        }
        const tags = checkTags(input.tags);
        const attributes = checkAttributes(input.attributes);
        if (this.deleted.has(key)) {
          throw new KvError(
            409,
            'Conflict',
            `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
            'ObjectIsDeletedButRecoverable',
          );
        }
        const now = this.seconds();
        let secret = this.secrets.get(key);
        if (!secret) {
          secret = { name, versions: [] };
          this.secrets.set(key, secret);
        }
        const version: Version = {
          id: randomBytes(16).toString('hex'),
          value: input.value,
          enabled: attributes.enabled ?? true,
          created: now,
          updated: now,
        };
        if (typeof input.contentType === 'string') version.contentType = input.contentType;
        if (tags) version.tags = tags;
        if (attributes.exp !== undefined) version.exp = attributes.exp;
        if (attributes.nbf !== undefined) version.nbf = attributes.nbf;
        secret.versions.push(version);
        return { status: 200, json: this.bundle(secret, version, true) };
      }
      case 'get': {
        const secret = this.secrets.get(key);
        const version = secret && this.findVersion(secret, route.version);
        if (!secret || !version) throw notFound(route.version ? `${name}/${route.version}` : name);
        if (!version.enabled) {
          throw new KvError(
            403,
            'Forbidden',
            'Operation get is not allowed on a disabled secret.',
            'SecretDisabled',
          );
        }
        return { status: 200, json: this.bundle(secret, version, true) };
      }
      case 'update': {
        const secret = this.secrets.get(key);
        const version = secret && this.findVersion(secret, route.version);
        if (!secret || !version) throw notFound(route.version ? `${name}/${route.version}` : name);
        const input = parseJson(body);
        const tags = checkTags(input.tags);
        const attributes = checkAttributes(input.attributes);
        if (tags) version.tags = tags;
        if (typeof input.contentType === 'string') version.contentType = input.contentType;
        if (attributes.enabled !== undefined) version.enabled = attributes.enabled;
        if (attributes.exp !== undefined) version.exp = attributes.exp;
        if (attributes.nbf !== undefined) version.nbf = attributes.nbf;
        version.updated = this.seconds();
        return { status: 200, json: this.bundle(secret, version, false) };
      }
      case 'list': {
        const items = [...this.secrets.values()]
          .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()))
          .map((s) => this.item(s, s.versions[s.versions.length - 1]!, false));
        return { status: 200, json: this.page(items, url, apiVersion) };
      }
      case 'listVersions': {
        const secret = this.secrets.get(key);
        // Like the service, versions come in no particular order (here: by version id), not by age.
        const items = secret
          ? [...secret.versions]
              .sort((a, b) => a.id.localeCompare(b.id))
              .map((v) => this.item(secret, v, true))
          : [];
        return { status: 200, json: this.page(items, url, apiVersion) };
      }
      case 'delete': {
        const secret = this.secrets.get(key);
        if (!secret) throw notFound(name);
        this.secrets.delete(key);
        const now = this.seconds();
        const deleted: Deleted = {
          secret,
          deletedDate: now,
          scheduledPurgeDate: now + RECOVERABLE_DAYS * 86400,
        };
        this.deleted.set(key, deleted);
        return { status: 200, json: this.deletedBundle(deleted) };
      }
      case 'getDeleted': {
        const deleted = this.deleted.get(key);
        if (!deleted) throw notFound(name);
        return { status: 200, json: this.deletedBundle(deleted) };
      }
      case 'listDeleted': {
        const items = [...this.deleted.values()].map((d) => {
          const latest = d.secret.versions[d.secret.versions.length - 1]!;
          return {
            ...this.item(d.secret, latest, false),
            recoveryId: `${this.baseUrl()}/deletedsecrets/${d.secret.name}`,
            deletedDate: d.deletedDate,
            scheduledPurgeDate: d.scheduledPurgeDate,
          };
        });
        return { status: 200, json: this.page(items, url, apiVersion) };
      }
      case 'recover': {
        const deleted = this.deleted.get(key);
        if (!deleted) throw notFound(name);
        this.deleted.delete(key);
        this.secrets.set(key, deleted.secret);
        const latest = deleted.secret.versions[deleted.secret.versions.length - 1]!;
        return { status: 200, json: this.bundle(deleted.secret, latest, false) };
      }
      case 'purge': {
        if (!this.deleted.has(key)) throw notFound(name);
        if (this.purgeProtection) {
          throw new KvError(
            403,
            'Forbidden',
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.',
          );
        }
        this.deleted.delete(key);
        return { status: 204 };
      }
    }
  }

  private findVersion(secret: Secret, version: string | undefined): Version | undefined {
    if (!version) return secret.versions[secret.versions.length - 1];
    return secret.versions.find((v) => v.id === version);
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  private attributes(v: Version): Record<string, unknown> {
    const attributes: Record<string, unknown> = { enabled: v.enabled };
    if (v.nbf !== undefined) attributes.nbf = v.nbf;
    if (v.exp !== undefined) attributes.exp = v.exp;
    attributes.created = v.created;
    attributes.updated = v.updated;
    attributes.recoveryLevel = this.purgeProtection ? 'Recoverable' : 'Recoverable+Purgeable';
    attributes.recoverableDays = RECOVERABLE_DAYS;
    return attributes;
  }

  private bundle(secret: Secret, v: Version, withValue: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (withValue) out.value = v.value;
    if (v.contentType !== undefined) out.contentType = v.contentType;
    out.id = `${this.baseUrl()}/secrets/${secret.name}/${v.id}`;
    out.attributes = this.attributes(v);
    if (v.tags) out.tags = { ...v.tags };
    return out;
  }

  /** A list item: the secret id (with the version only when listing versions), attributes, tags. */
  private item(secret: Secret, v: Version, withVersion: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {
      id: `${this.baseUrl()}/secrets/${secret.name}${withVersion ? `/${v.id}` : ''}`,
      attributes: this.attributes(v),
    };
    if (v.tags) out.tags = { ...v.tags };
    if (v.contentType !== undefined) out.contentType = v.contentType;
    return out;
  }

  private deletedBundle(d: Deleted): Record<string, unknown> {
    const latest = d.secret.versions[d.secret.versions.length - 1]!;
    return {
      recoveryId: `${this.baseUrl()}/deletedsecrets/${d.secret.name}`,
      deletedDate: d.deletedDate,
      scheduledPurgeDate: d.scheduledPurgeDate,
      ...this.bundle(d.secret, latest, false),
    };
  }

  private page(
    items: unknown[],
    url: URL,
    apiVersion: string,
  ): { value: unknown[]; nextLink: string | null } {
    const max = url.searchParams.has('maxresults') ? Number(url.searchParams.get('maxresults')) : MAX_PAGE;
    if (!Number.isInteger(max) || max < 1 || max > MAX_PAGE) {
      throw badParameter(`maxresults must be an integer between 1 and ${MAX_PAGE}.`);
    }
    const token = url.searchParams.get('$skiptoken');
    const offset = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(offset) || offset < 0) throw badParameter('The $skiptoken is invalid.');
    const value = items.slice(offset, offset + max);
    if (offset + max >= items.length) return { value, nextLink: null };
    const next = new URL(url.pathname, this.baseUrl());
    next.searchParams.set('api-version', apiVersion);
    next.searchParams.set('$skiptoken', Buffer.from(String(offset + max)).toString('base64url'));
    next.searchParams.set('maxresults', String(max));
    return { value, nextLink: next.toString() };
  }
}

interface Route {
  op: KeyVaultOperation;
  name?: string;
  version?: string;
}

function matchRoute(method: string, pathname: string): Route | undefined {
  const parts = pathname.split('/').slice(1);
  // `/secrets/{name}/` (empty version) is how the SDK asks for the latest version.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const [collection, rawName, third, ...rest] = parts;
  if (rest.length > 0) return undefined;
  const name = rawName === undefined ? undefined : decodeURIComponent(rawName);
  if (collection === 'secrets') {
    if (name === undefined) return method === 'GET' ? { op: 'list' } : undefined;
    if (third === undefined) {
      if (method === 'PUT') return { op: 'set', name };
      if (method === 'GET') return { op: 'get', name };
      if (method === 'DELETE') return { op: 'delete', name };
      if (method === 'PATCH') return { op: 'update', name };
      return undefined;
    }
    if (third === 'versions' && method === 'GET') return { op: 'listVersions', name };
    const version = decodeURIComponent(third);
    if (method === 'GET') return { op: 'get', name, version };
    if (method === 'PATCH') return { op: 'update', name, version };
    return undefined;
  }
  if (collection === 'deletedsecrets') {
    if (name === undefined) return method === 'GET' ? { op: 'listDeleted' } : undefined;
    if (third === undefined) {
      if (method === 'GET') return { op: 'getDeleted', name };
      if (method === 'DELETE') return { op: 'purge', name };
      return undefined;
    }
    if (third === 'recover' && method === 'POST') return { op: 'recover', name };
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(body: string): Record<string, unknown> {
  try {
    const json: unknown = JSON.parse(body);
    if (typeof json === 'object' && json !== null && !Array.isArray(json))
      return json as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw badParameter('The request body is not a valid JSON object.');
}

function checkTags(tags: unknown): Record<string, string> | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (typeof tags !== 'object' || Array.isArray(tags)) throw badParameter('Tags must be an object.');
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw badParameter(`A maximum of ${MAX_TAGS} tags is allowed.`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw badParameter('Tag values must be strings.');
    if (k.length === 0 || k.length > MAX_TAG_NAME) {
      throw badParameter(`Tag names must be 1 to ${MAX_TAG_NAME} characters long.`);
    }
    if (v.length > MAX_TAG_VALUE)
      throw badParameter(`Tag values must be at most ${MAX_TAG_VALUE} characters long.`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function checkAttributes(attributes: unknown): { enabled?: boolean; exp?: number; nbf?: number } {
  if (attributes === undefined || attributes === null) return {};
  if (typeof attributes !== 'object') throw badParameter('Attributes must be an object.');
  const a = attributes as Record<string, unknown>;
  const out: { enabled?: boolean; exp?: number; nbf?: number } = {};
  if (a.enabled !== undefined && a.enabled !== null) {
    if (typeof a.enabled !== 'boolean') throw badParameter('Attribute enabled must be a boolean.');
    out.enabled = a.enabled;
  }
  for (const k of ['exp', 'nbf'] as const) {
    const v = a[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw badParameter(`Attribute ${k} must be a NumericDate.`);
    out[k] = v;
  }
  return out;
}

/** A credential that hands out one fixed token and remembers what it was asked for. */
export class TestCredential implements TokenCredential {
  readonly requests: Array<{ scopes: string[]; tenantId?: string }> = [];
  /** When set, `getToken` throws it (e.g. no managed identity, no `az login`). */
  failWith?: Error;

  constructor(private readonly token: string) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    this.requests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
    if (this.failWith) throw this.failWith;
    return { token: this.token, expiresOnTimestamp: Date.now() + 60 * 60 * 1000 };
  }
}

export interface KeyVaultFake {
  /** `https://127.0.0.1:{port}`: the vault URL (`KEY_VAULT_URL`). */
  url: string;
  sim: KeyVaultSimulator;
  /** Gets the token the simulator accepts. */
  credential: TestCredential;
  /** PEM of the CA that signed the simulator's certificate. */
  ca: string;
  /** The broker's Key Vault store for this vault, chosen by `openStore` from `KEY_VAULT_URL`. */
  createStore(
    options?: KeyVaultSecretStoreOptions,
    credential?: TokenCredential,
  ): Promise<KeyVaultSecretStore>;
  close(): Promise<void>;
}

/** Starts a simulator over HTTPS on 127.0.0.1 (random port) with a test certificate. */
export async function startKeyVaultSimulator(options: KeyVaultSimulatorOptions = {}): Promise<KeyVaultFake> {
  const tls = testTls();
  let url = '';
  const sim = new KeyVaultSimulator(() => url, options);
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => sim.handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const credential = new TestCredential(sim.accessToken);
  return {
    url,
    sim,
    credential,
    ca: tls.ca,
    async createStore(storeOptions = {}, otherCredential) {
      const store = await openStore(loadSettings({ KEY_VAULT_URL: url }), {
        credential: otherCredential ?? credential,
        keyVault: {
          ...storeOptions,
          tlsOptions: { ca: tls.ca, ...storeOptions.tlsOptions },
          // The challenge names vault.azure.net; this vault's host is 127.0.0.1.
          disableChallengeResourceVerification: true,
        },
      });
      return store as KeyVaultSecretStore;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        sim.releaseHung();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

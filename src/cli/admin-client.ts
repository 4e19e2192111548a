import type { Broker } from '../lib/broker.js';
import type { DefinitionSource } from '../lib/config/catalog.js';
import { parseDuration } from '../lib/config/duration.js';
import type { Actor } from '../lib/definitions/definition-store.js';
import { BrokerError } from '../lib/errors.js';

/** What `broker connections|templates` does, against the local store or a deployed broker. */
export type DefinitionKind = 'connection' | 'template';

/** An entry as the admin API answers it (docs/connections.md, "The entry"); the CLI prints it whole. */
export interface AdminEntry {
  id?: string;
  name?: string;
  source: DefinitionSource;
  template?: string;
  etag?: string;
  [field: string]: unknown;
}

export interface ListFilter {
  source?: DefinitionSource;
  template?: string;
}

/** The admin API's operations, one implementation per target. */
export interface AdminClient {
  /** Every entry (all pages), ordered by id. */
  list(kind: DefinitionKind, filter: ListFilter): AsyncIterable<AdminEntry>;
  get(kind: DefinitionKind, name: string): Promise<AdminEntry>;
  put(kind: DefinitionKind, name: string, body: unknown): Promise<{ entry: AdminEntry; created: boolean }>;
  remove(kind: DefinitionKind, name: string): Promise<void>;
  /** A new invitation for a connection (docs/invitations.md): its link, shown once. */
  invite(id: string, body: InviteBody): Promise<InviteAnswer>;
}

/** `POST /api/connections/{id}/invitations`'s body and answer. */
export interface InviteBody {
  expiresIn?: string;
  note?: string;
  replace?: boolean;
}
export interface InviteAnswer {
  id: string;
  url: string;
  expiresAt: string;
  replace: boolean;
}

/**
 * An admin answer that was a problem (RFC 9457), from the HTTP API or the local services alike: the
 * stable `code`, the `detail` and the `errors` list of a refused definition.
 */
export class AdminProblem extends Error {
  constructor(
    readonly code: string,
    readonly detail: string,
    readonly errors: { path: string; message: string }[] = [],
    readonly status?: number,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'AdminProblem';
  }

  static of(err: BrokerError): AdminProblem {
    return new AdminProblem(err.code, err.message, err.errors ?? []);
  }
}

/** Who the local CLI writes as (`createdBy` / `updatedBy`, the audit lines). */
const CLI_ACTOR: Actor = { name: 'cli' };
const PAGE = 1000;

/**
 * The configured store, through the same `DefinitionService` the broker's routes use: the same
 * validation, conditions and audit lines. A running host on the same store takes the change from the
 * store's change feed.
 */
export function localAdminClient(broker: Broker, by: Actor = CLI_ACTOR): AdminClient {
  const service = broker.definitions;
  const wrap = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      throw err instanceof BrokerError ? AdminProblem.of(err) : err;
    }
  };
  return {
    async *list(kind, filter) {
      let after: string | undefined;
      for (;;) {
        const page: { items: unknown[]; next?: string } = await wrap(
          (): Promise<{ items: unknown[]; next?: string }> =>
            kind === 'connection'
              ? service.listConnections({ ...filter, top: PAGE, after })
              : service.listTemplates({ top: PAGE, after }),
        );
        for (const item of page.items) yield item as unknown as AdminEntry;
        if (page.next === undefined) return;
        after = page.next;
      }
    },
    get: (kind, name) =>
      wrap(async () =>
        kind === 'connection'
          ? ((await service.getConnection(name)) as unknown as AdminEntry)
          : ((await service.getTemplate(name)) as unknown as AdminEntry),
      ),
    put: (kind, name, body) =>
      wrap(async () => {
        const done =
          kind === 'connection'
            ? await service.putConnection(name, body, by, {})
            : await service.putTemplate(name, body, by, {});
        return { entry: done.entry as unknown as AdminEntry, created: done.created };
      }),
    remove: (kind, name) =>
      wrap(() =>
        kind === 'connection' ? service.deleteConnection(name, by, {}) : service.deleteTemplate(name, by, {}),
      ),
    invite: (id, body) =>
      wrap(async () => {
        const expiresInMs = body.expiresIn === undefined ? undefined : parseDuration(body.expiresIn);
        if (body.expiresIn !== undefined && expiresInMs === undefined) {
          throw new AdminProblem(
            'usage',
            `--expires must be an ISO-8601 duration such as P7D, not "${body.expiresIn}"`,
          );
        }
        const created = await broker.invitations.create(
          id,
          { expiresInMs, note: body.note, replace: body.replace },
          by,
        );
        return { id: created.id, url: created.url, expiresAt: created.expiresAt, replace: created.replace };
      }),
  };
}

export interface HttpAdminOptions {
  /** The deployed broker, e.g. `https://broker.example.net` (its `/api/...` routes). */
  url: string;
  /** `Authorization` / `x-functions-key` for each request. */
  authorize: () => Promise<Record<string, string>>;
  fetch?: typeof fetch;
}

/** A deployed broker's admin routes over HTTP (docs/connections.md, "The admin API"). */
export function httpAdminClient(options: HttpAdminOptions): AdminClient {
  const base = options.url.replace(/\/+$/, '');
  const send = options.fetch ?? globalThis.fetch;
  const path = (kind: DefinitionKind, name?: string) =>
    `${base}/api/${kind === 'connection' ? 'connections' : 'templates'}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
  const call = async (method: string, url: string, body?: unknown): Promise<Response> => {
    const headers: Record<string, string> = { accept: 'application/json', ...(await options.authorize()) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await send(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
    if (response.status >= 300) throw await problemOf(response);
    return response;
  };
  return {
    async *list(kind, filter) {
      const params = new URLSearchParams({ top: String(PAGE) });
      if (kind === 'connection' && filter.source) params.set('source', filter.source);
      if (kind === 'connection' && filter.template) params.set('template', filter.template);
      let url: string | null = `${path(kind)}?${params}`;
      const field = kind === 'connection' ? 'connections' : 'templates';
      while (url) {
        const page = (await (await call('GET', url)).json()) as Record<string, unknown>;
        for (const item of (page[field] as AdminEntry[] | undefined) ?? []) yield item;
        // The server's nextLink names its public URL; follow its path and query on the URL given.
        const next = typeof page.nextLink === 'string' ? new URL(page.nextLink) : null;
        url = next ? `${base}${next.pathname}${next.search}` : null;
      }
    },
    async get(kind, name) {
      return (await (await call('GET', path(kind, name))).json()) as AdminEntry;
    },
    async put(kind, name, body) {
      const response = await call('PUT', path(kind, name), body);
      return { entry: (await response.json()) as AdminEntry, created: response.status === 201 };
    },
    async remove(kind, name) {
      await call('DELETE', path(kind, name));
    },
    async invite(id, body) {
      return (await (
        await call('POST', `${path('connection', id)}/invitations`, body)
      ).json()) as InviteAnswer;
    },
  };
}

/** A refusal as a problem: problem+json when the broker answered one, else the status alone. */
async function problemOf(response: Response): Promise<AdminProblem> {
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (body && typeof body === 'object' && typeof (body as { code?: unknown }).code === 'string') {
    const p = body as { code: string; detail?: unknown; errors?: unknown };
    const errors = Array.isArray(p.errors)
      ? p.errors.filter(
          (e): e is { path: string; message: string } =>
            typeof e?.path === 'string' && typeof e?.message === 'string',
        )
      : [];
    return new AdminProblem(p.code, typeof p.detail === 'string' ? p.detail : '', errors, response.status);
  }
  const hint =
    response.status === 401
      ? 'the broker refused the credentials (--key / BROKER_FUNCTION_KEY, or the signed-in account)'
      : `the broker answered HTTP ${response.status}`;
  return new AdminProblem(`http_${response.status}`, hint, [], response.status);
}

/**
 * How the CLI proves itself to a deployed broker: the function key (`ADMIN_AUTH=key`), or, az-style,
 * a bearer token from `DefaultAzureCredential` (az login, managed identity, environment) for the
 * broker's API (`ADMIN_AUTH=easyauth` + `CALLER_AUTH=entra`, with the app role `ADMIN_ROLE`).
 */
export function adminAuthorization(options: {
  key?: string;
  scope?: string;
}): () => Promise<Record<string, string>> {
  const { key, scope } = options;
  if (key) return async () => ({ 'x-functions-key': key });
  if (!scope) {
    throw new AdminProblem(
      'usage',
      'with --url, give --key (or BROKER_FUNCTION_KEY) for the function key, or --scope (or BROKER_API_URI) for a token of the signed-in Azure account',
    );
  }
  let credential: { getToken(scope: string): Promise<{ token: string } | null> } | undefined;
  return async () => {
    // Loaded only here: the SDK is large and the key path needs none of it.
    credential ??= new (await import('@azure/identity')).DefaultAzureCredential();
    const token = await credential.getToken(scope).catch(() => null);
    if (!token) {
      throw new AdminProblem(
        'unauthorized',
        `no Azure credential could get a token for ${scope}: sign in with "az login" (or set --key)`,
      );
    }
    return { authorization: `Bearer ${token.token}` };
  };
}

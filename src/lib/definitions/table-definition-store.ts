import { randomBytes } from 'node:crypto';
import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import type { Clock } from '../clock.js';
import { BrokerError } from '../errors.js';
import type {
  Actor,
  ChangeBatch,
  DefinitionKind,
  DefinitionRecord,
  DefinitionStore,
  ListOptions,
  ListPage,
  WriteCondition,
} from './definition-store.js';
import { checkCondition, checkName, preconditionFailed } from './definition-store.js';

/**
 * Definitions in Azure Table Storage of the Functions host storage (docs/connections.md). One table,
 * `brokerdefinitions`, created when missing:
 * - PartitionKey `connection-{id}` / `template-{name}`, RowKey `definition`: the definition as JSON
 *   (split over `definition0…` when longer than a property holds), its `template`, and who made and
 *   changed it. A partition per definition, not one for all: 100,000 connections in one partition
 *   would be one hot partition for every write (Azure serves a partition from one server, about
 *   2,000 entities a second), and Azurite walks a partition on each point read and insert. Listing
 *   is a range of partition keys (`connection-` … `connection.`), which Table Storage returns in key
 *   order, so pages stay ordered by id.
 *   Optimistic concurrency is the entity's own ETag (`If-Match` on update and delete, insert for
 *   `If-None-Match: *`), so of concurrent writes with one ETag exactly one wins. The API's etag is
 *   the entity's, base64url-encoded (Table ETags are weak and hold quotes).
 * - PartitionKey `change-{second}`, RowKey `{ms}-{seq}-{random}`: one row per write or delete, the
 *   change feed, a partition per second for the same reason. Instances read the rows after their
 *   last poll, less an overlap that covers clock skew between instances; rows seen in the overlap
 *   are not reported twice.
 */

export const DEFINITIONS_TABLE = 'brokerdefinitions';
const CHANGE_PREFIX = 'change-';
/** Sorts after every `change-…` partition key ('.' follows '-'). */
const CHANGE_END = 'change.';
const ROW = 'definition';
/** Rows written by a writer whose clock is this far behind the reader's are still seen. */
const OVERLAP_MS = 10_000;
/** A Table string property holds 64 KiB, i.e. 32 K UTF-16 units; chunks stay well below. */
const CHUNK_CHARS = 30_000;
const MAX_CHUNKS = 8;
const REQUEST_TIMEOUT_MS = 5_000;
const MAX_WRITE_ATTEMPTS = 5;
/** Change rows older than this are deleted (every reader polls far more often). */
const CHANGE_RETENTION_MS = 60 * 60 * 1000;
/** Every this many writes, an instance deletes up to `PRUNE_BATCH` expired change rows. */
const PRUNE_EVERY = 256;
const PRUNE_BATCH = 500;

type Entity = TableEntityResult<Record<string, unknown>>;

/** Orders the rows one process writes within one millisecond. */
let sequence = 0;

export class TableDefinitionStore implements DefinitionStore {
  readonly kind = 'table';
  private ready?: Promise<void>;
  private readonly seen = new Map<string, number>();
  private writes = 0;

  constructor(
    private readonly client: TableClient,
    private readonly clock: Pick<Clock, 'now'>,
    /** Every this many writes, expired change rows are pruned (tests make it small). */
    private readonly pruneEvery = PRUNE_EVERY,
  ) {}

  async get(kind: DefinitionKind, name: string): Promise<DefinitionRecord | undefined> {
    const entity = await this.read(kind, checkName(name));
    return entity ? toRecord(kind, entity) : undefined;
  }

  async put(
    kind: DefinitionKind,
    name: string,
    definition: Record<string, unknown>,
    by: Actor,
    condition: WriteCondition = {},
  ): Promise<{ record: DefinitionRecord; created: boolean }> {
    checkName(name);
    await this.ensureTable();
    for (let attempt = 1; ; attempt++) {
      // Without If-Match, an insert is tried first: a new definition is then one request, not a
      // read and an insert; one that exists answers 409 and the next attempt reads and replaces it.
      const insertFirst = condition.ifNoneMatch === '*' || (attempt === 1 && condition.ifMatch === undefined);
      const existing = insertFirst ? undefined : await this.read(kind, name);
      const existingEtag = existing ? encodeEtag(existing.etag) : undefined;
      if (condition.ifNoneMatch !== '*') checkCondition(existingEtag, condition);
      const now = new Date(this.clock.now()).toISOString();
      const entity = {
        partitionKey: partitionOf(kind, name),
        rowKey: ROW,
        ...definitionProperties(definition),
        createdAt: existing ? String(existing.createdAt) : now,
        ...actorProperties('createdBy', existing ? actorOf(existing, 'createdBy') : by),
        updatedAt: now,
        ...actorProperties('updatedBy', by),
      };
      try {
        const response = existing
          ? await this.call(() =>
              this.client.updateEntity(entity, 'Replace', { etag: existing.etag, ...timeout() }),
            )
          : await this.call(() => this.client.createEntity(entity, timeout()));
        await this.logChange(kind, name);
        const record = toRecord(kind, { ...entity, etag: response.etag ?? '' } as Entity);
        return { record, created: !existing };
      } catch (err) {
        // Someone else wrote first. With a condition, that is the answer; without, read again and retry.
        if (!isConflict(err)) throw err;
        if (condition.ifMatch !== undefined || condition.ifNoneMatch !== undefined)
          throw preconditionFailed();
        if (attempt >= MAX_WRITE_ATTEMPTS) throw preconditionFailed();
      }
    }
  }

  async delete(kind: DefinitionKind, name: string, condition: WriteCondition = {}): Promise<boolean> {
    const existing = await this.read(kind, checkName(name));
    if (!existing) {
      if (condition.ifMatch !== undefined) throw preconditionFailed();
      return false;
    }
    checkCondition(encodeEtag(existing.etag), condition);
    try {
      await this.call(() =>
        this.client.deleteEntity(partitionOf(kind, name), ROW, { etag: existing.etag, ...timeout() }),
      );
    } catch (err) {
      if (isConflict(err)) throw preconditionFailed();
      if (statusOf(err) === 404) return false;
      throw err;
    }
    await this.logChange(kind, name);
    return true;
  }

  async list(kind: DefinitionKind, options: ListOptions): Promise<ListPage> {
    await this.ensureTable();
    let filter = `${odata`PartitionKey gt ${partitionOf(kind, options.after ?? '')}`} and ${odata`PartitionKey lt ${`${kind}.`}`}`;
    if (options.template !== undefined) filter += ` and ${odata`template eq ${options.template}`}`;
    const records: DefinitionRecord[] = [];
    return this.call(async () => {
      const pages = this.client
        .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
        .byPage({ maxPageSize: Math.min(options.top + 1, 1000) });
      for await (const page of pages) {
        for (const entity of page) {
          if (records.length === options.top) return { records, more: true };
          records.push(toRecord(kind, entity as Entity));
        }
      }
      return { records, more: false };
    });
  }

  async changesSince(cursor?: string): Promise<ChangeBatch> {
    const now = this.clock.now();
    if (cursor === undefined) return { changes: [], cursor: String(now) };
    const since = Number(cursor);
    if (!Number.isSafeInteger(since)) return { changes: [], cursor: String(now), reset: true };
    await this.ensureTable();
    const fromMs = Math.max(0, since - OVERLAP_MS);
    const from = rowTime(fromMs);
    const filter = `${odata`PartitionKey ge ${changePartition(fromMs)}`} and ${odata`PartitionKey lt ${CHANGE_END}`} and ${odata`RowKey gt ${from}`}`;
    const changes: ChangeBatch['changes'] = [];
    await this.call(async () => {
      const rows = this.client.listEntities<{ kind: string; name: string }>({
        queryOptions: { filter, select: ['RowKey', 'kind', 'name'] },
        ...timeout(),
      });
      for await (const row of rows) {
        if (this.seen.has(row.rowKey!)) continue;
        this.seen.set(row.rowKey!, now);
        if ((row.kind === 'connection' || row.kind === 'template') && typeof row.name === 'string')
          changes.push({ kind: row.kind, name: row.name });
      }
    });
    // Rows older than the overlap are never read again: forget them.
    for (const [key, at] of this.seen) if (at < now - 4 * OVERLAP_MS) this.seen.delete(key);
    return { changes, cursor: String(Math.max(since, now)) };
  }

  private async read(kind: DefinitionKind, name: string): Promise<Entity | undefined> {
    await this.ensureTable();
    try {
      return (await this.call(() =>
        this.client.getEntity<Record<string, unknown>>(partitionOf(kind, name), ROW, timeout()),
      )) as Entity;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private async logChange(kind: DefinitionKind, name: string): Promise<void> {
    const now = this.clock.now();
    const rowKey = `${rowTime(now)}-${String(sequence++ % 1e9).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
    await this.call(() =>
      this.client.createEntity({ partitionKey: changePartition(now), rowKey, kind, name }, timeout()),
    );
    if (++this.writes % this.pruneEvery === 0) void this.pruneChanges().catch(() => {});
  }

  /** Deletes expired change rows, a batch at a time, off the writer's path; a failure waits for the next turn. */
  private async pruneChanges(): Promise<void> {
    const before = changePartition(this.clock.now() - CHANGE_RETENTION_MS);
    const filter = `${odata`PartitionKey ge ${CHANGE_PREFIX}`} and ${odata`PartitionKey lt ${before}`}`;
    let deleted = 0;
    const rows = this.client.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } });
    for await (const row of rows) {
      await this.client.deleteEntity(row.partitionKey!, row.rowKey!, timeout());
      if (++deleted >= PRUNE_BATCH) break;
    }
  }

  /** The table, created on first use (and again after a failure): a storage outage at start-up heals. */
  private ensureTable(): Promise<void> {
    this.ready ??= this.call(async () => {
      try {
        await this.client.createTable(timeout());
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
    }).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /**
   * Storage unreachable, throttled or failing → 503 `upstream_unavailable`; everything else as it
   * is. A table that vanished (storage recreated) is created again and the request retried once.
   */
  private async call<T>(work: () => Promise<T>, again = true): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (again && tableMissing(err)) {
        this.ready = undefined;
        await this.ensureTable();
        return this.call(work, false);
      }
      const status = statusOf(err);
      if (status === undefined || status === 408 || status === 429 || status >= 500) {
        throw new BrokerError(
          'upstream_unavailable',
          'The definition store (Table Storage) is unreachable or busy; try again shortly.',
          { retryAfter: 5, cause: err },
        );
      }
      throw err;
    }
  }
}

function timeout(): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
}

function rowTime(ms: number): string {
  return String(ms).padStart(15, '0');
}

/** A definition's partition: its kind and name (names are `[a-z0-9-]`, so key order is name order). */
function partitionOf(kind: DefinitionKind, name: string): string {
  return `${kind}-${name}`;
}

/** The change feed's partition for the second of `ms`. */
function changePartition(ms: number): string {
  return `${CHANGE_PREFIX}${String(Math.floor(ms / 1000)).padStart(12, '0')}`;
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof BrokerError) return 503;
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Azurite and Azure say it in the error body (`odata.error.code`), not always in `code`. */
function tableMissing(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  return (
    e?.code === 'TableNotFound' ||
    (e?.statusCode === 404 && typeof e.message === 'string' && e.message.includes('TableNotFound'))
  );
}

function isConflict(err: unknown): boolean {
  const status = statusOf(err);
  return status === 409 || status === 412;
}

/** The entity ETag as the API shows it: URL- and header-safe. */
function encodeEtag(etag: string): string {
  return Buffer.from(etag, 'utf8').toString('base64url');
}

function definitionProperties(definition: Record<string, unknown>): Record<string, unknown> {
  const json = JSON.stringify(definition);
  const chunks = Math.max(1, Math.ceil(json.length / CHUNK_CHARS));
  if (chunks > MAX_CHUNKS)
    throw new BrokerError('payload_too_large', 'The definition is too large to store.');
  const properties: Record<string, unknown> = { chunks };
  for (let i = 0; i < chunks; i++)
    properties[`definition${i}`] = json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
  if (typeof definition.template === 'string') properties.template = definition.template;
  return properties;
}

function actorProperties(prefix: string, actor: Actor): Record<string, string> {
  return actor.id === undefined
    ? { [`${prefix}Name`]: actor.name }
    : { [`${prefix}Name`]: actor.name, [`${prefix}Id`]: actor.id };
}

function actorOf(entity: Record<string, unknown>, prefix: string): Actor {
  const name = String(entity[`${prefix}Name`] ?? '');
  const id = entity[`${prefix}Id`];
  return typeof id === 'string' ? { name, id } : { name };
}

function toRecord(kind: DefinitionKind, entity: Entity): DefinitionRecord {
  const chunks = Number(entity.chunks ?? 1);
  let json = '';
  for (let i = 0; i < chunks; i++) json += String(entity[`definition${i}`] ?? '');
  return {
    kind,
    name: String(entity.partitionKey).slice(kind.length + 1),
    definition: JSON.parse(json) as Record<string, unknown>,
    etag: encodeEtag(entity.etag),
    createdAt: String(entity.createdAt),
    createdBy: actorOf(entity, 'createdBy'),
    updatedAt: String(entity.updatedAt),
    updatedBy: actorOf(entity, 'updatedBy'),
  };
}

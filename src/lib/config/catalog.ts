import type { Clock } from '../clock.js';
import type {
  DefinitionChange,
  DefinitionRecord,
  DefinitionStore,
  ListOptions,
  ListPage,
} from '../definitions/definition-store.js';
import { BrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
import { firstAfter } from '../sorted.js';
import type { Connection, TemplateConfig } from './connections.js';
import { resolveConnection } from './load.js';
import { type PackedRecord, packRecord, unpackRecord } from './packed-record.js';
import type { Settings } from './settings.js';
import { type Checked, type CheckedConnection, checkConnection } from './templates.js';

/** Where a connection or template comes from (docs/connections.md). */
export type DefinitionSource = 'declared' | 'managed';

/** A change the catalog has taken in: `removed` when the connection is gone. */
export interface CatalogChange {
  kind: 'connection' | 'template';
  name: string;
  removed: boolean;
}

export interface CatalogOptions {
  /** Templates of the file / app setting, which declared and managed connections may name. */
  declaredTemplates?: Map<string, TemplateConfig>;
  /** Managed connections and templates; absent = declared only (tests, `broker check`). */
  definitions?: DefinitionStore;
  settings?: Pick<Settings, 'publicUrl'>;
  clock?: Pick<Clock, 'now'>;
  logger?: Pick<Logger, 'warn'>;
  /** How often other instances' changes are picked up (default 15 s; the contract allows 30). */
  syncIntervalMs?: number;
}

const DEFAULT_SYNC_INTERVAL_MS = 15_000;
/** Ids recently found missing, so a flood of unknown ids is not a flood of store reads. */
const MAX_MISSING = 10_000;
const LIST_PAGE = 1000;
/** After an admin page served by a store query, when the whole list is read (kept from then on). */
const LIST_AFTER_MS = 200;

/**
 * Every connection, declared (file / app setting) or managed (the definition store), looked up by
 * id. Every service, adapter and the CLI ask here, so an unknown id is the same 404
 * `unknown_connection` wherever it comes from.
 *
 * Sized for 100,000 managed connections: nothing lists them at start-up. An id not yet seen is one
 * point read (`get`), and the answer is kept; `all()` lists the store once (paged) when rotation or
 * status first need every connection, and keeps the list. Other instances' writes arrive through
 * the store's change feed, polled at most every `syncIntervalMs` by the next lookup (one cheap
 * request when nothing changed); this instance's own writes apply at once (`apply`).
 */
export class ConnectionCatalog {
  private readonly declared: ReadonlyMap<string, Connection>;
  private readonly declaredTemplates: ReadonlyMap<string, TemplateConfig>;
  private readonly definitions?: DefinitionStore;
  private readonly publicUrl: string;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly logger?: Pick<Logger, 'warn'>;
  private readonly syncIntervalMs: number;
  /** Managed connections seen so far (every one once `complete`). */
  private readonly managed = new Map<string, Connection>();
  /** The stored record of each managed connection seen, valid or not (the admin API's pages). */
  private readonly records = new Map<string, PackedRecord>();
  private readonly missing = new Set<string>();
  private complete = false;
  private listing?: Promise<void>;
  /** Every managed template, loaded on first need (templates are few). */
  private managedTemplates?: Map<string, TemplateConfig>;
  private templatesLoading?: Promise<Map<string, TemplateConfig>>;
  private cursor?: string;
  /** Changes read from the feed but not yet taken in (the store failed meanwhile). */
  private pending: DefinitionChange[] = [];
  private nextSyncAt = 0;
  /** When the last poll that took every change in began: memory is current up to then. */
  private syncedAt = Number.NEGATIVE_INFINITY;
  private syncing?: Promise<void>;
  private readonly listeners: ((change: CatalogChange) => void)[] = [];
  /** The stored managed ids in order, while `complete` and unchanged (pages by id from memory). */
  private sortedIds?: string[];

  constructor(declared: Iterable<Connection>, options: CatalogOptions = {}) {
    this.declared = new Map([...declared].map((c) => [c.id, c]));
    this.declaredTemplates = options.declaredTemplates ?? new Map();
    this.definitions = options.definitions;
    this.publicUrl = options.settings?.publicUrl ?? '';
    this.clock = options.clock ?? Date;
    this.logger = options.logger;
    this.syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  }

  /** The connection, or 404 `unknown_connection`. */
  async get(id: string): Promise<Connection> {
    const connection = await this.find(id);
    if (!connection) {
      throw new BrokerError('unknown_connection', `There is no connection "${id}".`, { connectionId: id });
    }
    return connection;
  }

  /** The connection, or undefined; a managed id not seen yet is one point read of the store. */
  async find(id: string): Promise<Connection | undefined> {
    const declared = this.declared.get(id);
    if (declared) return declared;
    if (!this.definitions) return undefined;
    await this.syncIfDue();
    const known = this.managed.get(id);
    if (known || this.complete || this.missing.has(id)) return known;
    const record = await this.definitions.get('connection', id);
    const connection = record ? await this.resolveRecord(record) : undefined;
    this.remember(id, record, connection);
    return connection;
  }

  /** What memory holds now, without I/O: declared, or managed and already seen. */
  peek(id: string): Connection | undefined {
    return this.declared.get(id) ?? this.managed.get(id);
  }

  /**
   * Every connection, declared first then managed; the first call lists the store (paged). With the
   * store down, the declared ones and the managed ones already seen: rotation and status go on.
   */
  async all(): Promise<Connection[]> {
    await this.syncIfDue();
    if (this.definitions && !this.complete) {
      this.listing ??= this.listAll().finally(() => {
        this.listing = undefined;
      });
      try {
        await this.listing;
      } catch (err) {
        this.logger?.warn('catalog.list_failed', { error: err instanceof Error ? err.name : typeof err });
      }
    }
    const managed = [...this.managed.values()].filter((c) => !this.declared.has(c.id));
    return [...this.declared.values(), ...managed];
  }

  /**
   * Up to `top` connections with ids after `after`, by id, declared and managed alike: one page of
   * the store, not the whole catalog (the status pages of an instance that has not listed it).
   */
  async pageById(top: number, after?: string): Promise<{ connections: Connection[]; more: boolean }> {
    let more = false;
    const declared = [...this.declared.values()].filter((c) => after === undefined || c.id > after);
    const managed: Connection[] = [];
    if (this.definitions) await this.syncIfDue();
    if (this.definitions && this.complete) {
      // Every managed connection is in memory (and kept current): the page needs no store query.
      const ids = this.managedIds();
      let i = firstAfter(ids, after);
      for (; i < ids.length && managed.length < top; i++) {
        const connection = this.managed.get(ids[i]!);
        if (connection) managed.push(connection);
      }
      // More only if a valid one follows (invalid records are the admin API's to list, not served).
      while (i < ids.length && !this.managed.has(ids[i]!)) i++;
      more = i < ids.length;
    } else if (this.definitions) {
      const page = await this.definitions.list('connection', { after, top });
      more = page.more;
      for (const record of page.records) {
        if (this.declared.has(record.name)) continue;
        let connection = this.managed.get(record.name);
        if (!connection) {
          connection = await this.resolveRecord(record);
          this.remember(record.name, record, connection);
        }
        if (connection) managed.push(connection);
      }
    }
    const all = [...declared, ...managed].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { connections: all.slice(0, top), more: more || all.length > top };
  }

  /**
   * Stored records of managed connections (valid or not) after `options.after`, by id, from memory
   * once every one has been listed: the admin API's pages without a store query (at 100,000 on
   * Azurite a query costs more than the page's budget). Until then `undefined`, and the whole list
   * is read soon after, in the background, so the following pages come from here.
   */
  async recordsPage(options: ListOptions): Promise<ListPage | undefined> {
    if (!this.definitions) return { records: [], more: false };
    await this.syncIfDue();
    if (!this.complete) {
      setTimeout(() => void this.all(), LIST_AFTER_MS).unref();
      return undefined;
    }
    const ids = this.managedIds();
    const records: DefinitionRecord[] = [];
    for (let i = firstAfter(ids, options.after); i < ids.length && records.length <= options.top; i++) {
      const id = ids[i]!;
      const packed = this.records.get(id)!;
      // The template of a valid one is its resolved connection's: only the page shown is unpacked.
      const template = this.managed.get(id)?.template;
      if (options.template !== undefined && template !== undefined && template !== options.template) continue;
      const record = unpackRecord(id, packed);
      if (options.template !== undefined && record.definition.template !== options.template) continue;
      records.push(record);
    }
    const more = records.length > options.top;
    return { records: more ? records.slice(0, options.top) : records, more };
  }

  /**
   * Every template's name, declared and managed, sorted: the managed ones from memory once loaded
   * (kept current by this instance's writes and the change feed), so a page that offers them does
   * not query the store each time. With the store down, the declared ones.
   */
  async templateNames(): Promise<string[]> {
    const names = new Set(this.declaredTemplates.keys());
    if (this.definitions) {
      await this.syncIfDue();
      try {
        for (const name of (await this.loadTemplates()).keys()) names.add(name);
      } catch (err) {
        this.logger?.warn('catalog.list_failed', { error: err instanceof Error ? err.name : typeof err });
      }
    }
    return [...names].sort();
  }

  /** Ids of the declared connections (no I/O), in the file's order. */
  declaredIds(): string[] {
    return [...this.declared.keys()];
  }

  isDeclared(id: string): boolean {
    return this.declared.has(id);
  }

  isDeclaredTemplate(name: string): boolean {
    return this.declaredTemplates.has(name);
  }

  /** The template (declared first, then managed), with its source. */
  async template(name: string): Promise<{ source: DefinitionSource; config: TemplateConfig } | undefined> {
    const declared = this.declaredTemplates.get(name);
    if (declared) return { source: 'declared', config: declared };
    if (!this.definitions) return undefined;
    await this.syncIfDue();
    const config = (await this.loadTemplates()).get(name);
    return config ? { source: 'managed', config } : undefined;
  }

  /** Declared template names, sorted. */
  declaredTemplateNames(): string[] {
    return [...this.declaredTemplates.keys()].sort();
  }

  /** A connection definition merged with its template (either source) and validated. */
  async check(definition: unknown): Promise<Checked<CheckedConnection>> {
    const templates = this.definitions ? await this.loadTemplates() : new Map<string, TemplateConfig>();
    return checkConnection(definition, (name) => this.declaredTemplates.get(name) ?? templates.get(name));
  }

  /** A managed connection's record as the catalog serves it (`undefined` when it no longer validates). */
  async resolveRecord(record: DefinitionRecord): Promise<Connection | undefined> {
    const checked = await this.check(record.definition);
    if (!checked.ok) {
      this.logger?.warn('connection.invalid_definition', {
        connection: record.name,
        fields: checked.issues.map((i) => i.path).join(','),
      });
      return undefined;
    }
    return this.shareTemplateFields(
      resolveConnection(
        record.name,
        checked.value.config,
        { publicUrl: this.publicUrl },
        checked.value.template,
      ),
      record.definition,
    );
  }

  /** Called with every change taken in (this instance's writes and other instances' alike). */
  onChange(listener: (change: CatalogChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Takes in a write made here (the writing instance sees it at once): the stored record, or
   * `undefined` when it was deleted.
   */
  async apply(
    kind: 'connection' | 'template',
    name: string,
    record: DefinitionRecord | undefined,
  ): Promise<void> {
    if (kind === 'template') {
      const templates = await this.loadTemplates();
      if (record) templates.set(name, record.definition as TemplateConfig);
      else templates.delete(name);
      await this.reresolveUsers(name);
      this.emit({ kind, name, removed: !record });
      return;
    }
    const connection = record ? await this.resolveRecord(record) : undefined;
    this.remember(name, record, connection);
    this.emit({ kind, name, removed: !connection });
  }

  /** Picks up other instances' changes now (the next lookup would, once `syncIntervalMs` passed). */
  async sync(): Promise<void> {
    if (!this.definitions) return;
    this.syncing ??= this.pullChanges().finally(() => {
      this.syncing = undefined;
    });
    await this.syncing;
  }

  /** Managed connections held in memory (every one once listed). */
  get managedSize(): number {
    return this.managed.size;
  }

  /**
   * Polls the change feed once `syncIntervalMs` has passed. The lookup that finds it due does not
   * wait for the poll while memory is less than twice the interval old (the contract's 30 s), so
   * a cached token never waits for a store query; past that, it waits.
   */
  private async syncIfDue(): Promise<void> {
    const now = this.clock.now();
    if (now < this.nextSyncAt) return;
    if (now < this.syncedAt + 2 * this.syncIntervalMs) {
      this.sync().catch(() => {});
      return;
    }
    await this.sync();
  }

  private async pullChanges(): Promise<void> {
    const store = this.definitions!;
    const startedAt = this.clock.now();
    this.nextSyncAt = startedAt + this.syncIntervalMs;
    let batch: Awaited<ReturnType<DefinitionStore['changesSince']>>;
    try {
      batch = await store.changesSince(this.cursor);
    } catch (err) {
      // The store is down: what is known keeps serving; try again next interval.
      this.logger?.warn('catalog.sync_failed', { error: err instanceof Error ? err.name : typeof err });
      return;
    }
    const first = this.cursor === undefined;
    this.cursor = batch.cursor;
    if (first) {
      this.syncedAt = startedAt;
      return;
    }
    if (batch.reset) {
      this.managed.clear();
      this.records.clear();
      this.sortedIds = undefined;
      this.missing.clear();
      this.managedTemplates = undefined;
      this.complete = false;
      this.pending = [];
      this.syncedAt = startedAt;
      return;
    }
    const changes = [...this.pending, ...batch.changes];
    this.pending = [];
    const seen = new Set<string>();
    for (const [i, change] of changes.entries()) {
      const key = `${change.kind}:${change.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (change.kind === 'connection' && !this.concerns(change.name)) {
        // Never looked up here: nothing to update, its first lookup reads the store. (A bulk import
        // seen by a starting instance is thousands of changes; reading each cost seconds.)
        this.missing.delete(change.name);
        continue;
      }
      try {
        await this.apply(change.kind, change.name, await store.get(change.kind, change.name));
      } catch (err) {
        // A read failed midway: keep what is known (never take a failure for a delete) and take
        // the rest in at the next sync; taking one in twice changes nothing.
        this.pending = changes.slice(i);
        this.logger?.warn('catalog.sync_failed', { error: err instanceof Error ? err.name : typeof err });
        return;
      }
    }
    this.syncedAt = startedAt;
  }

  private async listAll(): Promise<void> {
    const store = this.definitions!;
    let after: string | undefined;
    for (;;) {
      const page = await store.list('connection', { after, top: LIST_PAGE });
      for (const record of page.records) this.remember(record.name, record, await this.resolveRecord(record));
      if (!page.more || page.records.length === 0) break;
      after = page.records[page.records.length - 1]!.name;
    }
    this.complete = true;
  }

  private loadTemplates(): Promise<Map<string, TemplateConfig>> {
    if (this.managedTemplates) return Promise.resolve(this.managedTemplates);
    this.templatesLoading ??= (async () => {
      const templates = new Map<string, TemplateConfig>();
      let after: string | undefined;
      for (;;) {
        const page = await this.definitions!.list('template', { after, top: LIST_PAGE });
        for (const r of page.records) templates.set(r.name, r.definition as TemplateConfig);
        if (!page.more || page.records.length === 0) break;
        after = page.records[page.records.length - 1]!.name;
      }
      this.managedTemplates = templates;
      return templates;
    })().finally(() => {
      this.templatesLoading = undefined;
    });
    return this.templatesLoading;
  }

  /** A template changed: the connections in memory that use it are merged again (from their next use). */
  private async reresolveUsers(template: string): Promise<void> {
    const users = [...this.managed.values()].filter((c) => c.template === template).map((c) => c.id);
    if (users.length === 0 || !this.definitions) return;
    for (const id of users) {
      const record = await this.definitions.get('connection', id);
      this.remember(id, record, record ? await this.resolveRecord(record) : undefined);
    }
  }

  /** Whether a change to this connection matters here: held in memory, or every one is (being) listed. */
  private concerns(id: string): boolean {
    return this.complete || this.listing !== undefined || this.records.has(id);
  }

  /** The stored managed ids (not declared ones), sorted; kept until one is added or removed. */
  private managedIds(): string[] {
    this.sortedIds ??= [...this.records.keys()].filter((id) => !this.declared.has(id)).sort();
    return this.sortedIds;
  }

  /** `record` as stored (undefined: none), and `connection` as it resolved (undefined: gone or invalid). */
  private remember(
    id: string,
    record: DefinitionRecord | undefined,
    connection: Connection | undefined,
  ): void {
    // An id added or removed (not a definition replaced) changes the order.
    if (this.sortedIds && this.records.has(id) !== (record !== undefined)) this.sortedIds = undefined;
    if (record) this.records.set(id, packRecord(record));
    else this.records.delete(id);
    if (connection) {
      this.managed.set(id, connection);
      this.missing.delete(id);
      return;
    }
    this.managed.delete(id);
    if (this.missing.size >= MAX_MISSING) this.missing.clear();
    this.missing.add(id);
  }

  /**
   * Fields a connection takes from its template point at the template's own arrays and objects,
   * so 100,000 connections on one template hold one copy of its scopes, callers and credential.
   */
  private shareTemplateFields(connection: Connection, definition: Record<string, unknown>): Connection {
    const name = connection.template;
    if (!name) return connection;
    const template = this.declaredTemplates.get(name) ?? this.managedTemplates?.get(name);
    if (!template) return connection;
    const shared = connection as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(template)) {
      if (!(key in definition) && typeof value === 'object' && value !== null) shared[key] = value;
    }
    return connection;
  }

  private emit(change: CatalogChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

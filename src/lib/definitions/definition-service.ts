import type { ConnectionCatalog, DefinitionSource } from '../config/catalog.js';
import { CONNECTION_ID, type ConnectionConfig, type TemplateConfig } from '../config/connections.js';
import { checkConnection, checkTemplate } from '../config/templates.js';
import { BrokerError } from '../errors.js';
import type { Logger } from '../logger.js';
import { refreshTokenSecretName, type SecretStore } from '../store/secret-store.js';
import type { Actor, DefinitionRecord, DefinitionStore, WriteCondition } from './definition-store.js';

/** How many of a template's connections a template change is checked against. */
const MAX_CHECKED_USERS = 1000;

/** A connection as the admin API shows it (docs/connections.md, "The entry"). */
export interface ConnectionEntry {
  id: string;
  source: DefinitionSource;
  template?: string;
  /** As written. */
  definition: Record<string, unknown>;
  /** Merged with its template, defaults applied. */
  effective: ConnectionConfig | null;
  etag?: string;
  createdAt?: string;
  createdBy?: Actor;
  updatedAt?: string;
  updatedBy?: Actor;
}

export interface TemplateEntry {
  name: string;
  source: DefinitionSource;
  definition: Record<string, unknown>;
  etag?: string;
  createdAt?: string;
  createdBy?: Actor;
  updatedAt?: string;
  updatedBy?: Actor;
}

export interface ConnectionQuery {
  source?: DefinitionSource;
  template?: string;
  top: number;
  /** Ids strictly after this one. */
  after?: string;
}

export interface Page<T> {
  items: T[];
  /** The last id (name) of this page when more follow. */
  next?: string;
}

/**
 * The admin API's services (docs/connections.md): read both sources, write the managed one. Every
 * write goes to the definition store first, then into this instance's catalog at once; the other
 * instances take it from the store's change feed. Log lines `connection.created|updated|deleted`
 * name the connection, source, template and who — never a secret (definitions hold none).
 */
export class DefinitionService {
  constructor(
    private readonly deps: {
      catalog: ConnectionCatalog;
      store: DefinitionStore;
      secrets: SecretStore;
      /** Declared connections as written, by id. */
      declaredDefinitions: ReadonlyMap<string, Record<string, unknown>>;
      declaredTemplates: ReadonlyMap<string, TemplateConfig>;
      logger: Logger;
    },
  ) {}

  async getConnection(id: string): Promise<ConnectionEntry> {
    checkId(id, 'connection');
    const declared = this.deps.declaredDefinitions.get(id);
    if (declared) return this.declaredEntry(id, declared);
    const record = await this.deps.store.get('connection', id);
    if (!record) throw unknownConnection(id);
    return this.managedEntry(record);
  }

  async listConnections(query: ConnectionQuery): Promise<Page<ConnectionEntry>> {
    const { top, after, template } = query;
    const declared =
      query.source === 'managed'
        ? []
        : [...this.deps.declaredDefinitions.keys()]
            .filter((id) => after === undefined || id > after)
            .filter(
              (id) => template === undefined || this.deps.declaredDefinitions.get(id)!.template === template,
            )
            .sort()
            .slice(0, top + 1);
    // From the catalog's memory once it holds every stored record, else one page of the store.
    const options = { after, top: top + 1, template };
    const managed =
      query.source === 'declared'
        ? { records: [], more: false }
        : ((await this.deps.catalog.recordsPage(options)) ??
          (await this.deps.store.list('connection', options)));
    const merged: { id: string; record?: DefinitionRecord }[] = [
      ...declared.map((id) => ({ id })),
      ...managed.records
        .filter((r) => !this.deps.declaredDefinitions.has(r.name))
        .map((r) => ({ id: r.name, record: r })),
    ].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = merged.slice(0, top);
    const items = await Promise.all(
      page.map((p) =>
        p.record
          ? this.managedEntry(p.record)
          : this.declaredEntry(p.id, this.deps.declaredDefinitions.get(p.id)!),
      ),
    );
    return pageOf(items, merged.length > top || managed.more, (entry) => entry.id);
  }

  async putConnection(
    id: string,
    body: unknown,
    by: Actor,
    condition: WriteCondition,
  ): Promise<{ entry: ConnectionEntry; created: boolean }> {
    checkId(id, 'connection');
    if (this.deps.catalog.isDeclared(id)) throw declaredInConfig('connection', id);
    const checked = await this.deps.catalog.check(body);
    if (!checked.ok) throw invalidBody(checked.issues);
    const definition = body as Record<string, unknown>;
    const { record, created } = await this.deps.store.put('connection', id, definition, by, condition);
    await this.deps.catalog.apply('connection', id, record);
    this.deps.logger.info(created ? 'connection.created' : 'connection.updated', {
      connection: id,
      source: 'managed',
      template: checked.value.template ?? null,
      by: describe(by),
    });
    return { entry: await this.managedEntry(record), created };
  }

  /**
   * Deletes the definition, then the refresh token (`rt-{id}`: soft-deleted in a vault that keeps
   * deleted secrets), then drops the connection from this instance's catalog and token cache. The
   * secret goes first: a store outage then leaves the connection whole, to be deleted again.
   */
  async deleteConnection(id: string, by: Actor, condition: Pick<WriteCondition, 'ifMatch'>): Promise<void> {
    checkId(id, 'connection');
    if (this.deps.catalog.isDeclared(id)) throw declaredInConfig('connection', id);
    const record = await this.deps.store.get('connection', id);
    if (!record) throw unknownConnection(id);
    if (condition.ifMatch !== undefined && condition.ifMatch !== '*' && condition.ifMatch !== record.etag) {
      throw new BrokerError('precondition_failed', `Connection "${id}" changed meanwhile: read it again.`);
    }
    await this.deps.secrets.deleteSecret(refreshTokenSecretName(id));
    if (!(await this.deps.store.delete('connection', id, { ifMatch: record.etag })))
      throw unknownConnection(id);
    await this.deps.catalog.apply('connection', id, undefined);
    this.deps.logger.info('connection.deleted', {
      connection: id,
      source: 'managed',
      template: typeof record.definition.template === 'string' ? record.definition.template : null,
      by: describe(by),
    });
  }

  async getTemplate(name: string): Promise<TemplateEntry> {
    checkId(name, 'template');
    const declared = this.deps.declaredTemplates.get(name);
    if (declared) return { name, source: 'declared', definition: declared };
    const record = await this.deps.store.get('template', name);
    if (!record) throw unknownTemplate(name);
    return templateEntry(record);
  }

  async listTemplates(query: { top: number; after?: string }): Promise<Page<TemplateEntry>> {
    const { top, after } = query;
    const declared = [...this.deps.declaredTemplates.keys()].filter((n) => after === undefined || n > after);
    const managed = await this.deps.store.list('template', { after, top: top + 1 });
    const merged: TemplateEntry[] = [
      ...declared.map(
        (name): TemplateEntry => ({
          name,
          source: 'declared',
          definition: this.deps.declaredTemplates.get(name)!,
        }),
      ),
      ...managed.records.filter((r) => !this.deps.declaredTemplates.has(r.name)).map(templateEntry),
    ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const items = merged.slice(0, top);
    return pageOf(items, merged.length > top || managed.more, (entry) => entry.name);
  }

  async putTemplate(
    name: string,
    body: unknown,
    by: Actor,
    condition: WriteCondition,
  ): Promise<{ entry: TemplateEntry; created: boolean }> {
    checkId(name, 'template');
    if (this.deps.declaredTemplates.has(name)) throw declaredInConfig('template', name);
    const checked = checkTemplate(body);
    if (!checked.ok) throw invalidBody(checked.issues);
    await this.checkUsers(name, checked.value);
    const { record, created } = await this.deps.store.put(
      'template',
      name,
      body as Record<string, unknown>,
      by,
      condition,
    );
    await this.deps.catalog.apply('template', name, record);
    this.deps.logger.info(created ? 'template.created' : 'template.updated', {
      template: name,
      by: describe(by),
    });
    return { entry: templateEntry(record), created };
  }

  async deleteTemplate(name: string, by: Actor, condition: Pick<WriteCondition, 'ifMatch'>): Promise<void> {
    checkId(name, 'template');
    if (this.deps.declaredTemplates.has(name)) throw declaredInConfig('template', name);
    const users = await this.deps.store.list('connection', { template: name, top: 1 });
    if (users.records.length > 0) {
      throw new BrokerError(
        'template_in_use',
        `Template "${name}" is used by connections (for example "${users.records[0]!.name}"): move or delete them first.`,
      );
    }
    if (!(await this.deps.store.delete('template', name, condition))) throw unknownTemplate(name);
    await this.deps.catalog.apply('template', name, undefined);
    this.deps.logger.info('template.deleted', { template: name, by: describe(by) });
  }

  /**
   * A template change must leave its connections valid: each (up to the first 1000) is merged with
   * the new template and checked; a violation is a 400 naming the connection and the field.
   */
  private async checkUsers(name: string, template: TemplateConfig): Promise<void> {
    const users = await this.deps.store.list('connection', { template: name, top: MAX_CHECKED_USERS });
    const issues: { path: string; message: string }[] = [];
    for (const user of users.records) {
      const checked = checkConnection(user.definition, (n) => (n === name ? template : undefined));
      if (checked.ok) continue;
      for (const issue of checked.issues)
        issues.push({ path: issue.path, message: `connection "${user.name}" would break: ${issue.message}` });
    }
    if (issues.length > 0) throw invalidBody(issues.slice(0, 100));
  }

  private async declaredEntry(id: string, definition: Record<string, unknown>): Promise<ConnectionEntry> {
    const checked = await this.deps.catalog.check(definition);
    const entry: ConnectionEntry = {
      id,
      source: 'declared',
      definition,
      effective: checked.ok ? checked.value.config : null,
    };
    if (typeof definition.template === 'string') entry.template = definition.template;
    return entry;
  }

  private async managedEntry(record: DefinitionRecord): Promise<ConnectionEntry> {
    const checked = await this.deps.catalog.check(record.definition);
    const entry: ConnectionEntry = {
      id: record.name,
      source: 'managed',
      definition: record.definition,
      effective: checked.ok ? checked.value.config : null,
      etag: record.etag,
      createdAt: record.createdAt,
      createdBy: record.createdBy,
      updatedAt: record.updatedAt,
      updatedBy: record.updatedBy,
    };
    if (typeof record.definition.template === 'string') entry.template = record.definition.template;
    return entry;
  }
}

function templateEntry(record: DefinitionRecord): TemplateEntry {
  return {
    name: record.name,
    source: 'managed',
    definition: record.definition,
    etag: record.etag,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    updatedAt: record.updatedAt,
    updatedBy: record.updatedBy,
  };
}

/**
 * A page of a merged list (declared and managed, sorted): `next`, the last key on it, only when more
 * follow in either source, so that a client pages on with `after=next` until there is none.
 */
function pageOf<T>(items: T[], more: boolean, keyOf: (item: T) => string): Page<T> {
  const last = items[items.length - 1];
  return more && last !== undefined ? { items, next: keyOf(last) } : { items };
}

/** `by` in log lines: `{name, id}`, or `{name: 'function-key'}`. */
function describe(by: Actor): Actor {
  return by.id ? { name: by.name, id: by.id } : { name: by.name };
}

function checkId(id: string, what: 'connection' | 'template'): void {
  if (!CONNECTION_ID.test(id)) {
    throw new BrokerError(
      'invalid_request',
      `A ${what} ${what === 'connection' ? 'id' : 'name'} is 1-63 lowercase letters, digits and dashes, starting with a letter or digit.`,
    );
  }
}

function invalidBody(issues: { path: string; message: string }[]): BrokerError {
  const listed = issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ');
  return new BrokerError('invalid_request', `The definition is not valid: ${listed}`, { errors: issues });
}

function declaredInConfig(what: 'connection' | 'template', name: string): BrokerError {
  return new BrokerError(
    'declared_in_config',
    `${what === 'connection' ? 'Connection' : 'Template'} "${name}" is declared in the configuration (connections.json / BROKER_CONNECTIONS): change it there, not through the API.`,
  );
}

function unknownConnection(id: string): BrokerError {
  return new BrokerError('unknown_connection', `There is no connection "${id}".`, { connectionId: id });
}

function unknownTemplate(name: string): BrokerError {
  return new BrokerError('unknown_template', `There is no template "${name}".`);
}

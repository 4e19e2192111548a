/**
 * The definition store port (docs/connections.md): managed connections and templates, each a JSON
 * definition with an etag and who made and last changed it. Two implementations: the embedded file
 * store (data folder) and Azure Table Storage (`AzureWebJobsStorage`). Definitions never hold a
 * secret: they only name secrets. An unreachable store throws `BrokerError('upstream_unavailable')`.
 */

import { CONNECTION_ID } from '../config/connections.js';
import { BrokerError } from '../errors.js';

export type DefinitionKind = 'connection' | 'template';

/** Who made a change: a person's or service's name and oid, or `{name: 'function-key'}`. */
export interface Actor {
  name: string;
  id?: string;
}

export interface DefinitionRecord {
  kind: DefinitionKind;
  name: string;
  /** As written through the API (a connection's may name a `template`). */
  definition: Record<string, unknown>;
  /** Opaque; changes on every write. The HTTP `ETag` is this value quoted. */
  etag: string;
  createdAt: string;
  createdBy: Actor;
  updatedAt: string;
  updatedBy: Actor;
}

/** `ifMatch`: only if the stored etag is this one; `ifNoneMatch: '*'`: only if nothing is stored. */
export interface WriteCondition {
  ifMatch?: string;
  ifNoneMatch?: '*';
}

export interface ListOptions {
  /** Names strictly after this one (the page's continuation). */
  after?: string;
  /** At most this many (1…1000). */
  top: number;
  /** Connections only: those naming this template. */
  template?: string;
}

export interface ListPage {
  /** Ordered by name. */
  records: DefinitionRecord[];
  /** Whether more follow the last one. */
  more: boolean;
}

/** One definition written or deleted somewhere (maybe by another instance). */
export interface DefinitionChange {
  kind: DefinitionKind;
  name: string;
}

export interface ChangeBatch {
  changes: DefinitionChange[];
  /** Pass to the next `changesSince`. */
  cursor: string;
  /** The feed cannot say what changed since the cursor (it was compacted): forget everything cached. */
  reset?: boolean;
}

export interface DefinitionStore {
  /** `file` or `table`; shown in start-up lines. */
  readonly kind: string;
  get(kind: DefinitionKind, name: string): Promise<DefinitionRecord | undefined>;
  /**
   * Creates or replaces; `created` tells which. A condition that does not hold throws
   * `BrokerError('precondition_failed')` and writes nothing. Of concurrent writes with the same
   * `ifMatch` (or `ifNoneMatch: '*'`), exactly one succeeds.
   */
  put(
    kind: DefinitionKind,
    name: string,
    definition: Record<string, unknown>,
    by: Actor,
    condition?: WriteCondition,
  ): Promise<{ record: DefinitionRecord; created: boolean }>;
  /** False when there was nothing to delete; `ifMatch` not holding → `precondition_failed`. */
  delete(kind: DefinitionKind, name: string, condition?: Pick<WriteCondition, 'ifMatch'>): Promise<boolean>;
  list(kind: DefinitionKind, options: ListOptions): Promise<ListPage>;
  /**
   * What changed since `cursor` (every write and delete of any instance); without a cursor, none,
   * and the cursor of now. Cheap when nothing changed: instances poll it.
   */
  changesSince(cursor?: string): Promise<ChangeBatch>;
}

/*
 * Checks both implementations make alike (they were written twice, or borrowed from the file store),
 * so that a client sees the same error from either store.
 */

/** A definition's name: a connection id's syntax, for templates too. Returns it, for use inline. */
export function checkName(name: string): string {
  if (!CONNECTION_ID.test(name)) throw new BrokerError('invalid_request', `"${name}" is not a valid name.`);
  return name;
}

export function preconditionFailed(): BrokerError {
  return new BrokerError(
    'precondition_failed',
    'The definition changed meanwhile (or exists, or does not): read it again and retry with its current ETag.',
  );
}

/** The write condition against the stored etag (undefined: nothing stored). */
export function checkCondition(etag: string | undefined, condition: WriteCondition): void {
  if (condition.ifNoneMatch === '*' && etag !== undefined) throw preconditionFailed();
  if (condition.ifMatch !== undefined && condition.ifMatch !== '*' && condition.ifMatch !== etag)
    throw preconditionFailed();
  if (condition.ifMatch === '*' && etag === undefined) throw preconditionFailed();
}

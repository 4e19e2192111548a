import { randomUUID } from 'node:crypto';
import type {
  Actor,
  ChangeBatch,
  DefinitionKind,
  DefinitionRecord,
  DefinitionStore,
  ListOptions,
  ListPage,
  WriteCondition,
} from '../../src/lib/definitions/definition-store.js';
import { BrokerError } from '../../src/lib/errors.js';

/**
 * The definition store in memory, for the service tests (test/fakes/services.ts): the port's
 * contract (etags, conditions, ordered pages, a change feed) without a folder or a table. The real
 * implementations are proven by test/support/definition-store-contract.ts.
 */
export class MemoryDefinitionStore implements DefinitionStore {
  readonly kind = 'memory';
  private readonly records = new Map<string, DefinitionRecord>();
  private readonly feed: { kind: DefinitionKind; name: string }[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  async get(kind: DefinitionKind, name: string): Promise<DefinitionRecord | undefined> {
    return this.records.get(`${kind}/${name}`);
  }

  async put(
    kind: DefinitionKind,
    name: string,
    definition: Record<string, unknown>,
    by: Actor,
    condition: WriteCondition = {},
  ): Promise<{ record: DefinitionRecord; created: boolean }> {
    const before = this.records.get(`${kind}/${name}`);
    this.check(before, condition);
    const at = new Date(this.now()).toISOString();
    const record: DefinitionRecord = {
      kind,
      name,
      definition,
      etag: randomUUID(),
      createdAt: before?.createdAt ?? at,
      createdBy: before?.createdBy ?? by,
      updatedAt: at,
      updatedBy: by,
    };
    this.records.set(`${kind}/${name}`, record);
    this.feed.push({ kind, name });
    return { record, created: before === undefined };
  }

  async delete(kind: DefinitionKind, name: string, condition: WriteCondition = {}): Promise<boolean> {
    const before = this.records.get(`${kind}/${name}`);
    if (!before) return false;
    this.check(before, condition);
    this.records.delete(`${kind}/${name}`);
    this.feed.push({ kind, name });
    return true;
  }

  async list(kind: DefinitionKind, options: ListOptions): Promise<ListPage> {
    const all = [...this.records.values()]
      .filter((r) => r.kind === kind && (options.after === undefined || r.name > options.after))
      .filter((r) => options.template === undefined || r.definition.template === options.template)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    return { records: all.slice(0, options.top), more: all.length > options.top };
  }

  async changesSince(cursor?: string): Promise<ChangeBatch> {
    const from = cursor === undefined ? this.feed.length : Number(cursor);
    return { changes: this.feed.slice(from), cursor: String(this.feed.length) };
  }

  private check(before: DefinitionRecord | undefined, condition: WriteCondition): void {
    const fails =
      (condition.ifNoneMatch === '*' && before !== undefined) ||
      (condition.ifMatch !== undefined && before?.etag !== condition.ifMatch);
    if (fails) throw new BrokerError('precondition_failed', 'The definition changed meanwhile.');
  }
}

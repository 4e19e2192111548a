import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { BrokerError } from '../errors.js';
import { once } from '../once.js';
import { type Invitation, type InvitationStore, invitationRecord, TOKEN_HASH } from './invitation-store.js';

/** The table beside the definitions in the host storage account (`AzureWebJobsStorage`). */
export const INVITATION_TABLE = 'BrokerInvitations';
/**
 * Token lookups live in their own partition: `~token` / {token hash} → {connection, id}. A
 * connection id (`[a-z0-9-]`) can never be `~token`, so the two kinds of entity never meet.
 */
const TOKEN_PARTITION = '~token';
/** An update that lost a race re-reads and tries again, this many times. */
const UPDATE_ATTEMPTS = 5;

interface InvitationEntity {
  partitionKey: string;
  rowKey: string;
  /** The record as JSON: one property, read back through the same schema as the file store's. */
  record: string;
}

interface TokenEntity {
  partitionKey: string;
  rowKey: string;
  connection: string;
  id: string;
}

function status(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as { statusCode?: number }).statusCode : undefined;
}

/** Storage down or throttled: 503 with Retry-After, as for the lock's storage (never a 5xx of ours). */
async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const code = status(err);
    if (code === 404 || code === 409 || code === 412) throw err;
    throw new BrokerError(
      'upstream_unavailable',
      'The invitation store (Table Storage of AzureWebJobsStorage) did not answer; try again shortly.',
      { retryAfter: 5, cause: err },
    );
  }
}

function parse(entity: TableEntityResult<InvitationEntity>): Invitation | undefined {
  try {
    const parsed = invitationRecord.safeParse(JSON.parse(entity.record));
    return parsed.success &&
      parsed.data.connection === entity.partitionKey &&
      parsed.data.id === entity.rowKey
      ? parsed.data
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Invitations in Azure Table Storage (where `AzureWebJobsStorage` is set): one entity per invitation
 * in its connection's partition (listing a connection is one partition query), and one lookup entity
 * per token hash. Updates are optimistic, by the entity's ETag, so two instances claiming one
 * invitation at once cannot both win. The table is created on first use.
 */
export class TableInvitationStore implements InvitationStore {
  private readonly ready: () => Promise<void>;

  constructor(private readonly table: TableClient) {
    this.ready = once(() => guard(() => this.table.createTable()));
  }

  async create(invitation: Invitation): Promise<void> {
    const record = invitationRecord.parse(invitation);
    await this.ready();
    // The lookup first: an invitation never exists that its token cannot find.
    await guard(() =>
      this.table.createEntity<TokenEntity>({
        partitionKey: TOKEN_PARTITION,
        rowKey: record.tokenHash,
        connection: record.connection,
        id: record.id,
      }),
    );
    await guard(() =>
      this.table.createEntity<InvitationEntity>({
        partitionKey: record.connection,
        rowKey: record.id,
        record: JSON.stringify(record),
      }),
    );
  }

  async findByTokenHash(tokenHash: string): Promise<Invitation | undefined> {
    if (!TOKEN_HASH.test(tokenHash)) return undefined;
    await this.ready();
    const pointer = await this.get<TokenEntity>(TOKEN_PARTITION, tokenHash);
    if (!pointer || typeof pointer.connection !== 'string' || typeof pointer.id !== 'string')
      return undefined;
    const entity = await this.get<InvitationEntity>(pointer.connection, pointer.id);
    const record = entity ? parse(entity) : undefined;
    return record?.tokenHash === tokenHash ? record : undefined;
  }

  async list(connection?: string): Promise<Invitation[]> {
    await this.ready();
    // Keys are compared as strings: '~' sorts after every connection id, so `lt` skips the lookups.
    const filter =
      connection === undefined
        ? `PartitionKey lt '${TOKEN_PARTITION}'`
        : `PartitionKey eq '${connection.replace(/'/g, "''")}'`;
    const out: Invitation[] = [];
    await guard(async () => {
      for await (const entity of this.table.listEntities<InvitationEntity>({ queryOptions: { filter } })) {
        const record = parse(entity);
        if (record) out.push(record);
      }
    });
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async update(
    connection: string,
    id: string,
    change: (current: Invitation) => Invitation | undefined,
  ): Promise<Invitation | undefined> {
    await this.ready();
    for (let attempt = 1; ; attempt++) {
      const entity = await this.get<InvitationEntity>(connection, id);
      const current = entity ? parse(entity) : undefined;
      if (!entity || !current) return undefined;
      const next = change(current);
      if (!next) return current;
      const record = invitationRecord.parse({ ...next, id: current.id, tokenHash: current.tokenHash });
      try {
        await guard(() =>
          this.table.updateEntity<InvitationEntity>(
            { partitionKey: connection, rowKey: id, record: JSON.stringify(record) },
            'Replace',
            { etag: entity.etag },
          ),
        );
        return record;
      } catch (err) {
        // Someone else wrote it since we read: read again, and let `change` decide again.
        if (status(err) !== 412 || attempt >= UPDATE_ATTEMPTS) throw err;
      }
    }
  }

  private async get<T extends object>(
    partitionKey: string,
    rowKey: string,
  ): Promise<TableEntityResult<T> | undefined> {
    try {
      return await guard(() => this.table.getEntity<T>(partitionKey, rowKey));
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw err;
    }
  }
}

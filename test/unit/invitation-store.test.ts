import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { ConnectionCatalog } from '../../src/lib/config/catalog.js';
import type { Connection } from '../../src/lib/config/connections.js';
import { isBrokerError } from '../../src/lib/errors.js';
import { FileInvitationStore } from '../../src/lib/invitations/file-invitation-store.js';
import {
  InvitationService,
  MAX_INVITATION_TTL_MS,
  tokenHash,
} from '../../src/lib/invitations/invitation-service.js';
import type { Invitation, InvitationStore } from '../../src/lib/invitations/invitation-store.js';
import { openInvitationStore } from '../../src/lib/invitations/open-invitations.js';
import { TableInvitationStore } from '../../src/lib/invitations/table-invitation-store.js';
import { type AzuriteTables, startAzuriteTables } from '../support/azurite.js';
import { memoryLogger } from '../support/logs.js';

const posix = process.platform !== 'win32';
const T0 = Date.UTC(2026, 5, 1);

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'invitations-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function record(overrides: Partial<Invitation> = {}): Invitation {
  return {
    id: 'AAAAAAAAAAAAAAAAAAAAAA',
    connection: 'desk1',
    tokenHash: tokenHash('t'.repeat(43)),
    createdAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 1000).toISOString(),
    replace: false,
    createdBy: { name: 'function-key' },
    ...overrides,
  };
}

let azurite: AzuriteTables;
let tables = 0;
beforeAll(async () => {
  azurite = await startAzuriteTables();
}, 30_000);
afterAll(() => azurite.close());

/** What every InvitationStore must do (run on each implementation). */
const implementations: Array<[string, () => Promise<InvitationStore>]> = [
  ['file', async () => new FileInvitationStore(path.join(root, 'data'))],
  [
    'Table Storage (Azurite)',
    async () =>
      new TableInvitationStore(
        // A table per test: each starts empty, as the file store's temp folder does.
        TableClient.fromConnectionString(azurite.connectionString, `Invitations${++tables}`, {
          allowInsecureConnection: true,
        }),
      ),
  ],
];

describe('openInvitationStore', () => {
  it('Table Storage when AzureWebJobsStorage names a table endpoint, else the data folder', async () => {
    const dataDir = path.join(root, 'data');
    const cs = azurite.connectionString;
    expect(await openInvitationStore({ dataDir })).toBeInstanceOf(FileInvitationStore);
    const blobOnly =
      'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;';
    expect(
      await openInvitationStore({
        dataDir,
        hostStorage: { kind: 'connectionString', connectionString: blobOnly },
      }),
    ).toBeInstanceOf(FileInvitationStore);
    const table = await openInvitationStore({
      dataDir,
      hostStorage: { kind: 'connectionString', connectionString: cs },
    });
    expect(table).toBeInstanceOf(TableInvitationStore);
    // And it works: the broker's own table, created on first use.
    await table.create(record({ id: 'OOOOOOOOOOOOOOOOOOOOOO', connection: 'opened' }));
    expect((await table.list('opened')).map((i) => i.id)).toEqual(['OOOOOOOOOOOOOOOOOOOOOO']);
    expect((await table.list()).map((i) => i.connection)).toContain('opened');
  });
});

describe.each(implementations)('InvitationStore contract: %s', (_name, open) => {
  it('finds by token hash, lists by connection, and knows nothing else', async () => {
    const store = await open();
    const a = record();
    const b = record({ id: 'BBBBBBBBBBBBBBBBBBBBBB', tokenHash: tokenHash('u'.repeat(43)) });
    const c = record({
      id: 'CCCCCCCCCCCCCCCCCCCCCC',
      connection: 'desk2',
      tokenHash: tokenHash('v'.repeat(43)),
    });
    for (const r of [a, b, c]) await store.create(r);
    expect(await store.findByTokenHash(a.tokenHash)).toEqual(a);
    expect(await store.findByTokenHash(tokenHash('nope'))).toBeUndefined();
    expect(await store.findByTokenHash('../../etc/passwd')).toBeUndefined();
    expect((await store.list('desk1')).map((i) => i.id).sort()).toEqual([a.id, b.id]);
    expect(await store.list('desk3')).toEqual([]);
  });

  it('update is read-modify-write, one at a time: of 20 concurrent claims exactly one wins', async () => {
    const store = await open();
    await store.create(record());
    // A claim that lost the race re-reads and sees the winner's: only one caller gets its own back.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.update('desk1', 'AAAAAAAAAAAAAAAAAAAAAA', (current) =>
          current.usedAt
            ? undefined
            : { ...current, usedAt: new Date(T0 + i).toISOString(), usedBy: `n${i}` },
        ),
      ),
    );
    const wins = results.filter((r, i) => r?.usedBy === `n${i}`).length;
    expect(wins).toBe(1);
    expect(new Set(results.map((r) => r?.usedBy)).size).toBe(1);
    expect((await store.list('desk1'))[0]!.usedAt).toBeDefined();
    expect(await store.update('desk1', 'ZZZZZZZZZZZZZZZZZZZZZZ', (c) => c)).toBeUndefined();
    expect(await store.update('desk2', 'AAAAAAAAAAAAAAAAAAAAAA', (c) => c)).toBeUndefined();
  });
});

describe('FileInvitationStore', () => {
  it('writes the folder 0700 and each file 0600, holding the hash and never the token', async () => {
    const dataDir = path.join(root, 'data');
    const catalog = new ConnectionCatalog([{ id: 'desk1', scopes: [] } as unknown as Connection]);
    const service = new InvitationService({
      store: new FileInvitationStore(dataDir),
      catalog,
      clock: new ManualClock(T0),
      logger: memoryLogger().logger,
      publicUrl: 'https://broker.example',
    });
    const created = await service.create('desk1', {}, { name: 'function-key' });
    const token = created.url.split('/').pop()!;
    const dir = path.join(dataDir, 'invitations');
    const files = await readdir(dir);
    expect(files).toEqual([`${tokenHash(token)}.json`]);
    const text = await readFile(path.join(dir, files[0]!), 'utf8');
    expect(text).not.toContain(token);
    if (posix) {
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dir, files[0]!))).mode & 0o777).toBe(0o600);
    }
    // A damaged file invites nobody (410, not 500).
    await writeFile(path.join(dir, files[0]!), '{"not":"an invitation"}');
    await expect(service.resolve(token)).rejects.toSatisfy((e) => isBrokerError(e, 'invitation_invalid'));
  });
});

describe('InvitationService', () => {
  const setup = () => {
    const clock = new ManualClock(T0);
    const log = memoryLogger();
    const store = new FileInvitationStore(path.join(root, 'data'));
    let lists = 0;
    let wall = 0;
    const counted: InvitationStore = Object.assign(Object.create(store) as InvitationStore, {
      list: (connection?: string) => {
        if (connection === undefined) lists++;
        return store.list(connection);
      },
    });
    const service = new InvitationService({
      store: counted,
      catalog: new ConnectionCatalog([{ id: 'desk1', scopes: [] } as unknown as Connection]),
      clock,
      logger: log.logger,
      publicUrl: 'https://broker.example',
      now: () => wall,
    });
    return {
      clock,
      log,
      service,
      store,
      lists: () => lists,
      passWall: (ms: number) => {
        wall += ms;
      },
    };
  };

  it("keeps the status page's pending list up to 30 s: this instance's changes drop it, expiry is checked each time", async () => {
    const { service, store, clock, lists, passWall } = setup();
    const a = await service.create('desk1', { expiresInMs: 60_000 }, {});
    const b = await service.create('desk1', {}, {});
    const ids = async () => (await service.pending()).map((v) => v.id);
    expect(await ids()).toEqual([a.id, b.id]);
    expect(await ids()).toEqual([a.id, b.id]);
    expect(lists()).toBe(1);
    // Expired since: gone from the kept list without a listing.
    clock.advance(60_000);
    expect(await ids()).toEqual([b.id]);
    expect(lists()).toBe(1);
    // A change made here shows at once.
    await service.revoke('desk1', b.id, {});
    expect(await ids()).toEqual([]);
    expect(lists()).toBe(2);
    // Another instance's invitation (written to the store directly): within 30 s of the listing.
    const c = await service.create('desk1', {}, {});
    expect(await ids()).toEqual([c.id]);
    await store.create(
      record({ id: 'BBBBBBBBBBBBBBBBBBBBBB', tokenHash: tokenHash('u'.repeat(43)), expiresAt: c.expiresAt }),
    );
    passWall(29_000);
    expect(await ids()).toEqual([c.id]);
    passWall(1_000);
    expect((await ids()).sort()).toEqual(['BBBBBBBBBBBBBBBBBBBBBB', c.id].sort());
  });

  it('tokens are 256 random bits, each different; expiry defaults to 7 days and is capped at 30', async () => {
    const { service } = setup();
    const a = await service.create('desk1', {}, {});
    const b = await service.create('desk1', {}, {});
    const token = (u: string) => u.split('/').pop()!;
    expect(token(a.url)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token(a.url)).not.toBe(token(b.url));
    expect(Date.parse(a.expiresAt) - T0).toBe(7 * 86_400_000);
    await expect(service.create('desk1', { expiresInMs: MAX_INVITATION_TTL_MS + 1 }, {})).rejects.toSatisfy(
      (e) => isBrokerError(e, 'invalid_request'),
    );
    await expect(service.create('desk1', { expiresInMs: 0 }, {})).rejects.toSatisfy((e) =>
      isBrokerError(e, 'invalid_request'),
    );
    await expect(service.create('nope', {}, {})).rejects.toSatisfy((e) =>
      isBrokerError(e, 'unknown_connection'),
    );
  });

  it('resolves until expiry, claims once, and never logs a token', async () => {
    const { service, clock, log } = setup();
    const created = await service.create('desk1', {}, { name: 'ann' });
    const token = created.url.split('/').pop()!;
    expect((await service.resolve(token)).invitation.id).toBe(created.id);
    await service.claim('desk1', created.id, 'owner@contoso.com');
    await expect(service.claim('desk1', created.id, 'owner@contoso.com')).rejects.toSatisfy((e) =>
      isBrokerError(e, 'invitation_invalid'),
    );
    await expect(service.resolve(token)).rejects.toSatisfy((e) => isBrokerError(e, 'invitation_invalid'));

    const later = await service.create('desk1', { expiresInMs: 1000 }, {});
    clock.advance(1000);
    await expect(service.resolve(later.url.split('/').pop()!)).rejects.toSatisfy((e) =>
      isBrokerError(e, 'invitation_invalid'),
    );
    expect(JSON.stringify(log.lines)).not.toContain(token);
    expect(log.lines.map((l) => l.event)).toEqual(
      expect.arrayContaining(['invitation.created', 'invitation.used', 'invitation.refused']),
    );
  });
});

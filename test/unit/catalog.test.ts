import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { type CatalogChange, ConnectionCatalog } from '../../src/lib/config/catalog.js';
import type { TemplateConfig } from '../../src/lib/config/connections.js';
import { parseDeclared } from '../../src/lib/config/load.js';
import { checkConnection, mergeWithTemplate } from '../../src/lib/config/templates.js';
import type { DefinitionStore } from '../../src/lib/definitions/definition-store.js';
import { FileDefinitionStore } from '../../src/lib/definitions/file-definition-store.js';
import { BrokerError, ConfigError } from '../../src/lib/errors.js';
import { testConnection } from '../fakes/connections.js';

const CLIENT = '00000000-0000-4000-8000-000000000001';
const mailTemplate: TemplateConfig = {
  provider: 'entra',
  tenant: 'organizations',
  clientId: CLIENT,
  credential: { type: 'secret', secretName: 'ticket-app-secret' },
  scopes: ['offline_access', 'https://outlook.office.com/IMAP.AccessAsUser.All'],
};
const key = { name: 'function-key' };

/** Counts the reads a catalog makes, and can be taken down. */
function counted(inner: DefinitionStore) {
  const reads = { get: 0, list: 0, changes: 0 };
  let down = false;
  let readsDown = false;
  const guard = () => {
    if (down) throw new BrokerError('upstream_unavailable', 'down', { retryAfter: 5 });
  };
  const store: DefinitionStore = {
    kind: inner.kind,
    get: async (...a) => {
      reads.get++;
      guard();
      if (readsDown) throw new BrokerError('upstream_unavailable', 'down', { retryAfter: 5 });
      return inner.get(...a);
    },
    put: (...a) => inner.put(...a),
    delete: (...a) => inner.delete(...a),
    list: async (...a) => {
      reads.list++;
      guard();
      return inner.list(...a);
    },
    changesSince: async (...a) => {
      reads.changes++;
      guard();
      return inner.changesSince(...a);
    },
  };
  return {
    store,
    reads,
    setDown: (value: boolean) => (down = value),
    setReadsDown: (value: boolean) => (readsDown = value),
  };
}

describe('templates: merge and validation', () => {
  it("overrides the template's fields with the connection's own; arrays and objects replace", () => {
    const merged = mergeWithTemplate(
      { template: 'mail', scopes: ['openid'], credential: { type: 'managedIdentity' } },
      mailTemplate,
    );
    expect(merged).toEqual({ ...mailTemplate, scopes: ['openid'], credential: { type: 'managedIdentity' } });
    expect(merged).not.toHaveProperty('template');
  });

  it('validates the merged result with the one connection schema, naming fields by dotted path', () => {
    const checked = checkConnection({ template: 'mail', scopes: ['a b'], tenant: 'consumers' }, () => ({
      ...mailTemplate,
      credential: { type: 'managedIdentity' },
    }));
    expect(checked.ok).toBe(false);
    if (!checked.ok)
      expect(checked.issues.map((i) => i.path).sort()).toEqual(['credential', 'scopes.0'].sort());
    const unknown = checkConnection({ template: 'nope' }, () => undefined);
    expect(unknown).toEqual({
      ok: false,
      issues: [{ path: 'template', message: 'there is no template "nope"' }],
    });
  });

  it('reads templates from the file, and names the connection and field of a bad merge', () => {
    const text = (connections: unknown) => JSON.stringify({ templates: { mail: mailTemplate }, connections });
    const declared = parseDeclared(
      text({ desk1: { template: 'mail', expectedAccount: 'desk1@contoso.com', displayName: 'Desk 1' } }),
      'connections.json',
      { publicUrl: 'https://broker.example.com' },
    );
    const desk1 = declared.connections.get('desk1')!;
    expect(desk1).toMatchObject({
      template: 'mail',
      clientId: CLIENT,
      displayName: 'Desk 1',
      rotateAfterMs: 86_400_000,
    });
    expect(declared.definitions.get('desk1')).toEqual({
      template: 'mail',
      expectedAccount: 'desk1@contoso.com',
      displayName: 'Desk 1',
    });
    expect(() =>
      parseDeclared(text({ desk2: { template: 'mail', scopes: [] } }), 'connections.json', { publicUrl: '' }),
    ).toThrow(/connection "desk2": field "scopes"/);
    expect(() => parseDeclared(text({ desk3: { template: 'other' } }), 'c.json', { publicUrl: '' })).toThrow(
      ConfigError,
    );
    expect(() =>
      parseDeclared(
        text({ desk4: { template: 'mail', credential: { type: 'secret', secretName: 'rt-x' } } }),
        'c',
        {
          publicUrl: '',
        },
      ),
    ).toThrow(/reserved/);
  });
});

describe('ConnectionCatalog over declared and managed sources', () => {
  let root: string;
  let writer: DefinitionStore;
  let reader: ReturnType<typeof counted>;
  let clock: ManualClock;
  let catalog: ConnectionCatalog;
  let changes: CatalogChange[];

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'catalog-'));
    clock = new ManualClock();
    writer = await FileDefinitionStore.open(root, clock);
    reader = counted(await FileDefinitionStore.open(root, clock));
    await writer.put('template', 'mail', mailTemplate as Record<string, unknown>, key);
    catalog = new ConnectionCatalog([testConnection('declared-one')], {
      definitions: reader.store,
      clock,
      settings: { publicUrl: 'https://broker.example.com' },
      syncIntervalMs: 10_000,
    });
    changes = [];
    catalog.onChange((c) => changes.push(c));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('serves declared connections without touching the store', async () => {
    expect((await catalog.get('declared-one')).id).toBe('declared-one');
    expect(reader.reads.get).toBe(0);
  });

  it('reads an unseen managed id once, then from memory; an unknown id is 404 and not re-read', async () => {
    await writer.put('connection', 'desk1', { template: 'mail', expectedAccount: 'desk1@contoso.com' }, key);
    const desk1 = await catalog.get('desk1');
    expect(desk1).toMatchObject({
      id: 'desk1',
      template: 'mail',
      clientId: CLIENT,
      redirectUri: 'https://broker.example.com/api/callback',
    });
    expect(await catalog.get('desk1')).toBe(desk1);
    expect(catalog.peek('desk1')).toBe(desk1);
    expect(reader.reads.get).toBe(1);
    for (let i = 0; i < 3; i++)
      await expect(catalog.get('ghost')).rejects.toMatchObject({ code: 'unknown_connection' });
    expect(reader.reads.get).toBe(2);
  });

  it('pages by id with the declared ones: one store page before the catalog is listed, from memory after', async () => {
    for (const id of ['desk3', 'desk1', 'desk2'])
      await writer.put('connection', id, { template: 'mail' }, key);
    const ids = async (top: number, after?: string) => {
      const page = await catalog.pageById(top, after);
      return [page.connections.map((c) => c.id), page.more];
    };
    expect(await ids(2)).toEqual([['declared-one', 'desk1'], true]);
    expect(catalog.managedSize).toBe(2); // one page of the store: desk1, desk2
    await catalog.all();
    const listed = reader.reads.list;
    expect(await ids(2, 'desk1')).toEqual([['desk2', 'desk3'], false]);
    expect(reader.reads.list).toBe(listed);
    // Another instance's create and delete, taken in at the next sync, move the pages.
    await writer.put('connection', 'desk0', { template: 'mail' }, key);
    await writer.delete('connection', 'desk2');
    clock.advance(20_000); // twice the interval: the lookup waits for the poll
    expect(await ids(10)).toEqual([['declared-one', 'desk0', 'desk1', 'desk3'], false]);
    expect(reader.reads.list).toBe(listed);
  });

  it('pages stored records (an invalid one too) from memory once listed, current with writes here and elsewhere', async () => {
    await writer.put('template', 'other', mailTemplate as Record<string, unknown>, key);
    await writer.put('connection', 'desk2', { template: 'mail' }, key);
    await writer.put('connection', 'desk1', { template: 'other' }, key);
    // Stored, but no longer valid: listed by the admin API all the same, never served.
    await writer.put('connection', 'desk3', { template: 'mail', scopes: 'not-a-list' }, key);
    const names = (page: Awaited<ReturnType<ConnectionCatalog['recordsPage']>>) =>
      page && [page.records.map((r) => r.name), page.more];

    expect(await catalog.recordsPage({ top: 10 })).toBeUndefined();
    await catalog.all();
    const listed = reader.reads.list;
    const stored = await writer.get('connection', 'desk1');
    const first = await catalog.recordsPage({ top: 1 });
    expect(first).toEqual({ records: [stored], more: true });
    expect(names(await catalog.recordsPage({ top: 5, after: 'desk1' }))).toEqual([['desk2', 'desk3'], false]);
    expect(names(await catalog.recordsPage({ top: 5, template: 'other' }))).toEqual([['desk1'], false]);
    expect(names(await catalog.recordsPage({ top: 1, template: 'mail' }))).toEqual([['desk2'], true]);
    // The status pages by id serve only valid ones: nothing follows desk2 there.
    const served = await catalog.pageById(1, 'desk1');
    expect([served.connections.map((c) => c.id), served.more]).toEqual([['desk2'], false]);
    expect(reader.reads.list).toBe(listed);

    // A write here (applied at once) carries its new etag; another instance's delete, after a sync.
    const { record } = await writer.put('connection', 'desk2', { template: 'other' }, key);
    await catalog.apply('connection', 'desk2', record);
    expect((await catalog.recordsPage({ top: 1, after: 'desk1' }))!.records[0]).toEqual(record);
    await writer.delete('connection', 'desk1');
    clock.advance(20_000); // twice the interval: the lookup waits for the poll
    expect(names(await catalog.recordsPage({ top: 5 }))).toEqual([['desk2', 'desk3'], false]);
    expect(reader.reads.list).toBe(listed);
  });

  it("shares the template's arrays among its connections", async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await writer.put('connection', 'desk2', { template: 'mail', scopes: ['openid'] }, key);
    const [one, two] = [await catalog.get('desk1'), await catalog.get('desk2')];
    await writer.put('connection', 'desk3', { template: 'mail' }, key);
    const three = await catalog.get('desk3');
    expect(one.scopes).toBe(three.scopes);
    expect(one.credential).toBe(three.credential);
    expect(two.scopes).toEqual(['openid']);
  });

  it("takes in another instance's changes at the next poll: in the background within twice the interval, waited for after", async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await catalog.get('desk1');
    await expect(catalog.get('later')).rejects.toThrow(BrokerError);
    await writer.put('connection', 'later', { template: 'mail' }, key);
    await writer.put('connection', 'desk1', { template: 'mail', expectedAccount: 'x@contoso.com' }, key);
    const polls = reader.reads.changes;
    clock.advance(5_000);
    await expect(catalog.get('later')).rejects.toThrow(BrokerError);
    expect((await catalog.get('desk1')).expectedAccount).toBeUndefined();
    expect(reader.reads.changes).toBe(polls);
    // Due: this lookup answers from memory at once and starts the poll; the next sees its result.
    clock.advance(5_000);
    expect((await catalog.get('desk1')).expectedAccount).toBeUndefined();
    expect(reader.reads.changes).toBe(polls + 1);
    await catalog.sync();
    expect((await catalog.get('later')).id).toBe('later');
    expect((await catalog.get('desk1')).expectedAccount).toBe('x@contoso.com');

    // Memory older than twice the interval (the contract's 30 s by default): the lookup waits.
    await writer.delete('connection', 'desk1');
    clock.advance(20_000);
    await expect(catalog.get('desk1')).rejects.toMatchObject({ code: 'unknown_connection' });
    expect(changes).toContainEqual({ kind: 'connection', name: 'desk1', removed: true });
  });

  it('reads no change of a connection it never looked up; one found missing is read at its next lookup', async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await catalog.get('desk1');
    await expect(catalog.get('later')).rejects.toThrow(BrokerError);
    const gets = reader.reads.get;
    // A bulk import elsewhere: only the held connection's change is read.
    for (let i = 0; i < 50; i++) await writer.put('connection', `bulk${i}`, { template: 'mail' }, key);
    await writer.put('connection', 'later', { template: 'mail' }, key);
    await writer.put('connection', 'desk1', { template: 'mail', expectedAccount: 'x@contoso.com' }, key);
    clock.advance(10_000);
    await catalog.sync();
    expect(reader.reads.get).toBe(gets + 1);
    expect(catalog.peek('desk1')?.expectedAccount).toBe('x@contoso.com');
    expect((await catalog.get('later')).id).toBe('later');
    expect((await catalog.get('bulk7')).id).toBe('bulk7');
    expect(reader.reads.get).toBe(gets + 3);
  });

  it('lists every connection once for all(), then keeps it current from the feed', async () => {
    for (const id of ['m1', 'm2', 'm3']) await writer.put('connection', id, { template: 'mail' }, key);
    expect((await catalog.all()).map((c) => c.id)).toEqual(['declared-one', 'm1', 'm2', 'm3']);
    const lists = reader.reads.list;
    await catalog.all();
    expect(reader.reads.list).toBe(lists);
    await writer.put('connection', 'm4', { template: 'mail' }, key);
    await writer.delete('connection', 'm1');
    clock.advance(20_000); // twice the interval: the lookup waits for the poll
    expect((await catalog.all()).map((c) => c.id)).toEqual(['declared-one', 'm2', 'm3', 'm4']);
  });

  it('applies a template change to its connections from their next use', async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await catalog.get('desk1');
    await writer.put(
      'template',
      'mail',
      { ...mailTemplate, scopes: ['openid'] } as Record<string, unknown>,
      key,
    );
    clock.advance(20_000); // twice the interval: the lookup waits for the poll
    expect((await catalog.get('desk1')).scopes).toEqual(['openid']);
  });

  it('keeps serving known connections while the store is down', async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await catalog.get('desk1');
    reader.setDown(true);
    clock.advance(10_000);
    expect((await catalog.get('desk1')).id).toBe('desk1');
    await expect(catalog.get('unseen')).rejects.toMatchObject({ code: 'upstream_unavailable' });
  });

  it('never takes a failed read of a change for a delete, and takes the change in once reads work', async () => {
    await writer.put('connection', 'desk1', { template: 'mail' }, key);
    await catalog.get('desk1');
    await writer.put('connection', 'desk1', { template: 'mail', expectedAccount: 'new@contoso.com' }, key);
    reader.setReadsDown(true);
    clock.advance(10_000);
    expect((await catalog.get('desk1')).expectedAccount).toBeUndefined();
    expect(changes).toEqual([]);
    reader.setReadsDown(false);
    clock.advance(10_000);
    expect((await catalog.get('desk1')).expectedAccount).toBe('new@contoso.com');
    expect(changes).toEqual([{ kind: 'connection', name: 'desk1', removed: false }]);
  });
});

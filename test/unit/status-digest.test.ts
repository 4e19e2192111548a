import { describe, expect, it, vi } from 'vitest';
import { STATUS_DIGEST_SECRET } from '../../src/lib/health/status-digest.js';
import type { SecretStore } from '../../src/lib/store/secret-store.js';
import { testConnection } from '../fakes/connections.js';
import { MemorySecretStore } from '../fakes/memory-store.js';
import { services, settle, T0 } from '../fakes/services.js';
import { afterListDelay, gatedStore } from '../support/gated-store.js';

const ids = Array.from({ length: 250 }, (_, i) => `c-${String(i).padStart(3, '0')}`);
const connections = ids.map((id) => testConnection(id, { credential: undefined }));

/**
 * Page 1 once this instance has read every connection: a deployment nobody has counted yet (no
 * digest) first answers `counting` (test/unit/status-counting.test.ts), and counts in the background.
 */
async function countedPage(s: ReturnType<typeof services>) {
  const first = await s.status.page({ page: 1 });
  if (!first.counting) return first;
  await s.status.healthForPage();
  await settle();
  return s.status.page({ page: 1 });
}

async function seeded() {
  const first = services(connections);
  for (const id of ids) {
    if (id === 'c-007') continue; // never connected
    await first.seedGrant(
      id,
      `rt-${id}`,
      id === 'c-100' ? { status: 'needs_consent', lastError: 'invalid_grant' } : {},
    );
  }
  return first;
}

describe('status digest: page 1 of a cold instance (docs/status-and-rotation.md)', () => {
  it('an instance reading every connection stores the counts and the first ids needing a person', async () => {
    const a = await seeded();
    const page = await countedPage(a);
    expect(page.countedAt).toBeUndefined();
    expect(page.counting).toBeUndefined();
    expect(page.items.slice(0, 2).map((h) => h.id)).toEqual(['c-007', 'c-100']);
    await settle();
    const stored = await a.store.getSecret(STATUS_DIGEST_SECRET);
    expect(JSON.parse(stored!.value)).toEqual({
      v: 1,
      at: new Date(T0).toISOString(),
      total: 250,
      attention: 2,
      first: ['c-007', 'c-100'],
    });
    // The same list again: no new version.
    a.clock.advance(60_000);
    await a.status.recordDigest(await a.status.health());
    await settle();
    expect(await a.store.listVersions(STATUS_DIGEST_SECRET)).toHaveLength(1);
  });

  it('a cold instance answers page 1 from the digest and fresh reads of its rows, not a listing', async () => {
    const a = await seeded();
    await countedPage(a);
    await settle();
    // Since the digest: c-100 was reconnected, c-150 lost its grant.
    await a.seedGrant('c-100', 'rt-c-100-again');
    await a.seedGrant('c-150', 'rt-c-150', { status: 'needs_consent', lastError: 'invalid_grant' });

    const gated = gatedStore(a.store);
    const b = services(connections, { store: gated.store });
    const page = await b.status.page({ page: 1 });
    expect(page.countedAt).toBe(new Date(T0).toISOString());
    expect(page).toMatchObject({ total: 250, matched: 250, page: 1, pages: 2 });
    expect(page.items).toHaveLength(200);
    expect(page.items.slice(0, 2).map((h) => [h.id, h.status])).toEqual([
      ['c-007', 'not_connected'],
      ['c-150', 'needs_consent'],
    ]);
    expect(page.items.find((h) => h.id === 'c-100')).toMatchObject({ status: 'connected', remedy: null });
    // It answered without listing; the listing for the next request starts once it is out.
    expect(gated.lists()).toBe(0);
    await afterListDelay();
    expect(gated.lists()).toBe(1);
    gated.release();
    await settle();
    const next = await b.status.page({ page: 1 });
    expect(next.countedAt).toBeUndefined();
    expect(next.attention).toBe(2);
    expect(next.items.slice(0, 2).map((h) => h.id)).toEqual(['c-007', 'c-150']);
  });

  it('asks no catalog page when the digest names a whole page needing a person, unless one was fixed since', async () => {
    const first = services(connections);
    // 220 never connected: more than a page needs a person.
    for (const id of ids.slice(220)) await first.seedGrant(id, `rt-${id}`);
    await countedPage(first);
    await settle();
    const cold = () => {
      const b = services(connections, { store: gatedStore(first.store).store });
      return { b, pageById: vi.spyOn(b.catalog, 'pageById') };
    };

    const one = cold();
    const page = await one.b.status.page({ page: 1 });
    expect(page.countedAt).toBeDefined();
    expect(page.items.map((h) => h.id)).toEqual(ids.slice(0, 200));
    expect(page.items.every((h) => h.remedy !== null)).toBe(true);
    expect(one.pageById).not.toHaveBeenCalled();

    // c-000 connected since the digest: the named ones no longer fill the page, so the first page by
    // id does, and c-000 is among the healthy rows below those needing a person.
    await first.seedGrant('c-000', 'rt-c-000');
    const two = cold();
    const filled = await two.b.status.page({ page: 1 });
    expect(two.pageById).toHaveBeenCalledTimes(1);
    expect(filled.items).toHaveLength(200);
    expect(filled.items.slice(0, 199).every((h) => h.remedy !== null)).toBe(true);
    expect(filled.items.filter((h) => h.remedy === null).map((h) => h.id)).toEqual(['c-000']);
  });

  it('JSON pages by id from one catalog page and point reads when nothing is kept', async () => {
    const a = await seeded();
    const failing = Object.assign(Object.create(a.store) as SecretStore, {
      listSecrets: () => Promise.reject(new Error('the page must not list the store')),
    });
    const b = services(connections, { store: failing });
    const one = await b.status.pageAfter(100);
    expect(one.items.map((h) => h.id)).toEqual(ids.slice(0, 100));
    expect(one.next).toBe('c-099');
    expect(one.items[7]).toMatchObject({ id: 'c-007', status: 'not_connected' });
    const last = await b.status.pageAfter(100, 'c-199');
    expect(last.items.map((h) => h.id)).toEqual(ids.slice(200));
    expect(last.next).toBeUndefined();
  });

  it('a deployment within one page never gets a digest; a digest this version cannot read is ignored', async () => {
    const small = services(connections.slice(0, 3));
    await small.status.page({ page: 1 });
    await settle();
    expect(await small.store.getSecret(STATUS_DIGEST_SECRET)).toBeUndefined();

    // One that shrank below a page: the first instance whose page used the digest corrects it.
    await small.store.setSecret(
      STATUS_DIGEST_SECRET,
      JSON.stringify({ v: 1, at: new Date(T0).toISOString(), total: 250, attention: 0, first: [] }),
    );
    const shrunk = services(connections.slice(0, 3), { store: small.store });
    expect((await shrunk.status.page({ page: 1 })).countedAt).toBeDefined();
    await afterListDelay();
    await settle();
    expect(JSON.parse((await small.store.getSecret(STATUS_DIGEST_SECRET))!.value)).toMatchObject({
      total: 3,
      attention: 3,
    });
    expect((await shrunk.status.page({ page: 1 })).countedAt).toBeUndefined();

    const store = new MemorySecretStore(() => T0);
    await store.setSecret(STATUS_DIGEST_SECRET, '{"v":2}');
    const b = services(connections, { store });
    // Ignored: as if there were none, page 1 is the first page by id until this instance has counted.
    const page = await b.status.page({ page: 1 });
    expect(page.countedAt).toBeUndefined();
    expect(page.counting).toBe(true);
    const counted = await countedPage(b);
    expect(counted.counting).toBeUndefined();
    expect(counted.total).toBe(250);
  });

  it('a rotation pass writes the digest', async () => {
    const a = await seeded();
    await a.rotation.rotationPass();
    const stored = await a.store.getSecret(STATUS_DIGEST_SECRET);
    expect(JSON.parse(stored!.value)).toMatchObject({ total: 250, attention: 2, first: ['c-007', 'c-100'] });
  });
});

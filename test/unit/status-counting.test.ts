import { describe, expect, it } from 'vitest';
import { STATUS_DIGEST_SECRET } from '../../src/lib/health/status-digest.js';
import type { SecretStore } from '../../src/lib/store/secret-store.js';
import { statusPage } from '../../src/views/status-page.js';
import { testConnection } from '../fakes/connections.js';
import { services, settle, T0 } from '../fakes/services.js';
import { afterListDelay, gatedStore } from '../support/gated-store.js';

/**
 * Page 1 of a deployment past one page that nobody has read whole yet (no `broker-status-digest`):
 * answered from the first page by id while this instance counts (docs/status-and-rotation.md).
 */
const idsOf = (n: number) => Array.from({ length: n }, (_, i) => `c-${String(i).padStart(3, '0')}`);
const connectionsOf = (ids: string[]) => ids.map((id) => testConnection(id, { credential: undefined }));
const ids = idsOf(250);
const connections = connectionsOf(ids);

/** Every connection connected except c-150 (within page 1 by id) and c-240 (far past it): dead grants. */
async function seeded(list = ids) {
  const a = services(connectionsOf(list));
  for (const id of list) {
    const broken = id === 'c-150' || id === 'c-240';
    await a.seedGrant(id, `rt-${id}`, broken ? { status: 'needs_consent', lastError: 'invalid_grant' } : {});
  }
  return a;
}

const html = (page: Awaited<ReturnType<ReturnType<typeof services>['status']['page']>>) =>
  statusPage(page.items, { key: undefined, now: T0, paging: { page } }).body as string;

describe('status page of a deployment never counted (no digest yet)', () => {
  it('answers page 1 from the first page by id before any listing, then the full page once counted', async () => {
    const a = await seeded();
    expect(await a.store.getSecret(STATUS_DIGEST_SECRET)).toBeUndefined();
    const gated = gatedStore(a.store);
    const b = services(connections, { store: gated.store });

    const first = await b.status.page({ page: 1 });
    expect(gated.lists()).toBe(0);
    expect(first.counting).toBe(true);
    expect(first.countedAt).toBeUndefined();
    // Only the rows' own numbers: 200 shown, one of them needing a person, no pages promised.
    expect(first).toMatchObject({ total: 200, matched: 200, attention: 1, page: 1, pages: 1 });
    expect(first.items.map((h) => h.id)).toEqual([
      'c-150',
      ...ids.slice(0, 200).filter((id) => id !== 'c-150'),
    ]);
    expect(first.items[0]).toMatchObject({ status: 'needs_consent', lastError: 'invalid_grant' });
    expect(first.items[1]).toMatchObject({ id: 'c-000', status: 'connected', remedy: null });
    expect(first.items.some((h) => h.id === 'c-240')).toBe(false);

    const page = html(first);
    expect(page).toContain('This instance is reading every connection for the first time');
    expect(page).toContain('Shown: the first 200 connections by id.');
    expect(page).toContain('1 of them needs a person and is shown first.');
    expect(page).toContain('Reload shortly for the full list');
    expect(page).not.toContain('need attention');
    expect(page).not.toContain('healthy.');
    expect(page).not.toContain('class="pager"');
    expect(page).not.toContain('page=2');
    expect(page).toContain('role="search"');
    expect(page.indexOf('<code>c-150</code>')).toBeLessThan(page.indexOf('<code>c-000</code>'));

    // The listing starts once the answer is out; a request meanwhile counts on, one listing only.
    await afterListDelay();
    expect(gated.lists()).toBe(1);
    expect((await b.status.page({ page: 1 })).counting).toBe(true);
    expect(gated.lists()).toBe(1);
    expect(await a.store.getSecret(STATUS_DIGEST_SECRET)).toBeUndefined();

    gated.release();
    await b.status.healthForPage();
    await settle();
    const full = await b.status.page({ page: 1 });
    expect(full.counting).toBeUndefined();
    expect(full.countedAt).toBeUndefined();
    expect(full).toMatchObject({ total: 250, matched: 250, attention: 2, page: 1, pages: 2 });
    expect(full.items.slice(0, 3).map((h) => h.id)).toEqual(['c-150', 'c-240', 'c-000']);
    const counted = html(full);
    expect(counted).toContain('2 of 250 connections need attention.');
    expect(counted).not.toContain('first time');
    expect(counted).toContain('page 1 of 2');
    expect(JSON.parse((await a.store.getSecret(STATUS_DIGEST_SECRET))!.value)).toEqual({
      v: 1,
      at: new Date(T0).toISOString(),
      total: 250,
      attention: 2,
      first: ['c-150', 'c-240'],
    });
    // Another cold instance now answers from that digest, not counting.
    const c = services(connections, { store: gatedStore(a.store).store });
    const cold = await c.status.page({ page: 1 });
    expect(cold.counting).toBeUndefined();
    expect(cold.countedAt).toBe(new Date(T0).toISOString());
    expect(cold.items.slice(0, 2).map((h) => h.id)).toEqual(['c-150', 'c-240']);
  });

  it('a deployment of one page gets the full page with its counts at once; one more connection counts', async () => {
    const exact = idsOf(200);
    const a = await seeded(exact);
    const page = await a.status.page({ page: 1 });
    expect(page.counting).toBeUndefined();
    expect(page).toMatchObject({ total: 200, matched: 200, attention: 1, pages: 1 });
    expect(html(page)).toContain('1 of 200 connections needs attention.');
    expect(html(page)).not.toContain('first time');
    await settle();
    expect(await a.store.getSecret(STATUS_DIGEST_SECRET)).toBeUndefined();

    const over = idsOf(201);
    const b = await seeded(over);
    const gated = gatedStore(b.store);
    const c = services(connectionsOf(over), { store: gated.store });
    expect((await c.status.page({ page: 1 })).counting).toBe(true);
    expect(gated.lists()).toBe(0);
    gated.release();
  });

  it('a search, a later page, or a digest that cannot be read waits for the whole list as before', async () => {
    const a = await seeded();
    const b = services(connections, { store: a.store });
    const search = await b.status.page({ page: 1, q: 'c-24' });
    expect(search.counting).toBeUndefined();
    expect(search).toMatchObject({ total: 250, matched: 10 });
    const c = services(connections, { store: a.store });
    expect(await c.status.page({ page: 2 })).toMatchObject({ total: 250, page: 2, pages: 2 });

    const failing: SecretStore = Object.assign(Object.create(a.store) as SecretStore, {
      getSecret: (name: string) =>
        name === STATUS_DIGEST_SECRET ? Promise.reject(new Error('store down')) : a.store.getSecret(name),
    });
    const d = services(connections, { store: failing });
    const page = await d.status.page({ page: 1 });
    expect(page.counting).toBeUndefined();
    expect(page).toMatchObject({ total: 250, attention: 2 });
  });
});

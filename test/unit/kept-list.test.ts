import { describe, expect, it } from 'vitest';
import { KeptList } from '../../src/lib/kept-list.js';

const item = (id: string) => ({ id });

describe('KeptList', () => {
  it('computes small lists every time; keeps a long one up to 30 s, refreshing it in the background from 5 s', async () => {
    let now = 0;
    let computed = 0;
    let size = 3;
    const cache = new KeptList(
      async () => {
        computed++;
        return Array.from({ length: size }, (_, i) => item(`c${computed}-${i}`));
      },
      { keepAbove: 200, now: () => now },
    );
    await cache.get();
    await cache.get();
    expect(computed).toBe(2);
    size = 250;
    const kept = await cache.get();
    expect(computed).toBe(3);
    now = 4_999;
    expect(await cache.get()).toBe(kept);
    expect(computed).toBe(3);
    now = 5_000;
    expect(await cache.get()).toBe(kept);
    await new Promise((r) => setImmediate(r));
    expect(computed).toBe(4);
    now = 40_000;
    const fresh = await cache.get();
    expect(fresh).not.toBe(kept);
    cache.clear();
    await cache.get();
    expect(computed).toBe(6);
  });

  it('keeps every list by default (an empty one too), without refreshing before 30 s when asked', async () => {
    let now = 0;
    let computed = 0;
    const cache = new KeptList(
      async () => {
        computed++;
        return [];
      },
      { refreshAfterMs: Number.POSITIVE_INFINITY, now: () => now },
    );
    await cache.get();
    now = 29_999;
    await cache.get();
    await new Promise((r) => setImmediate(r));
    expect(computed).toBe(1);
    now = 30_000;
    await cache.get();
    expect(computed).toBe(2);
  });

  it('does not keep a list whose computation began before clear(): the writer sees its write next', async () => {
    let release!: () => void;
    const lists = [[item('before')], [item('after')]];
    let computed = 0;
    const cache = new KeptList(async () => {
      const list = lists[computed++]!;
      if (computed === 1) await new Promise<void>((resolve) => (release = resolve));
      return list;
    });
    const first = cache.get();
    await new Promise((r) => setImmediate(r));
    cache.clear(); // a write made here while the list was being computed
    const second = cache.get();
    release();
    expect((await first).map((i) => i.id)).toEqual(['before']);
    expect((await second).map((i) => i.id)).toEqual(['after']);
    expect((await cache.get()).map((i) => i.id)).toEqual(['after']);
    expect(computed).toBe(2);
  });
});

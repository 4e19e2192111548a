import { describe, expect, it } from 'vitest';
import { healthAfter, pageOfHealth } from '../../src/lib/health/status-paging.js';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';

const health = (id: string, broken = false, account: string | null = null): ConnectionHealth => ({
  id,
  provider: 'entra',
  flow: 'authorization_code',
  status: broken ? 'needs_consent' : 'connected',
  account,
  consentedAt: null,
  refreshedAt: null,
  lastError: null,
  deadlines: [],
  nextDeadline: null,
  warning: false,
  callers: [],
  remedy: broken ? { kind: 'reconnect', text: `Connection ${id}: reconnect.` } : null,
});

describe('status paging', () => {
  const all = Array.from({ length: 450 }, (_, i) =>
    health(`c-${String(449 - i).padStart(3, '0')}`, i % 100 === 7),
  );

  it('puts those needing a person first, then pages of 200 by id; a page past the end is the last', () => {
    const first = pageOfHealth(all, { page: 1 });
    expect(first).toMatchObject({ total: 450, matched: 450, attention: 5, page: 1, pages: 3 });
    expect(first.items.slice(0, 5).map((c) => c.id)).toEqual(['c-042', 'c-142', 'c-242', 'c-342', 'c-442']);
    expect(first.items[5]!.id).toBe('c-000');
    expect(first.items).toHaveLength(200);
    expect(pageOfHealth(all, { page: 9 }).page).toBe(3);
    expect(pageOfHealth(all, { page: 3 }).items).toHaveLength(50);
  });

  it('keeps the catalog order up to one page, and searches every word in id, account, provider', () => {
    const few = [health('b'), health('a', true), health('c', false, 'desk@contoso.com')];
    expect(pageOfHealth(few, { page: 1 }).items.map((c) => c.id)).toEqual(['a', 'b', 'c']);
    expect(pageOfHealth([health('b'), health('a')], { page: 1 }).items.map((c) => c.id)).toEqual(['b', 'a']);
    const found = pageOfHealth(few, { page: 1, q: 'DESK entra' });
    expect(found).toMatchObject({ matched: 1, total: 3 });
    expect(pageOfHealth(few, { page: 1, q: 'nobody' }).items).toEqual([]);
  });

  it('healthAfter pages by id for JSON', () => {
    const first = healthAfter(all, 100, undefined);
    expect(first.items[0]!.id).toBe('c-000');
    expect(first.next).toBe('c-099');
    expect(healthAfter(all, 100, 'c-399').next).toBeUndefined();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapWithConcurrency } from '../../src/lib/rotation/pool.js';
import { FUNCTION_KEY, type Stack, simulatorTemplate, startStack } from './harness.js';

/**
 * The status page past 200 connections (docs/status-and-rotation.md): declared and managed alike,
 * those needing a person on page 1 whatever their id, a search, pages of 200 whose links keep
 * `code=`; and `/api/status` JSON whole by default, paged with `top`.
 */
describe('status page: many connections', { timeout: 60_000 }, () => {
  let stack: Stack;
  const ids = Array.from({ length: 250 }, (_, i) => `desk-${String(i).padStart(3, '0')}`);
  const html = (query: string, key: string | null = FUNCTION_KEY) =>
    stack.api(`/api/status${query}`, { headers: { accept: 'text/html' }, key });

  beforeAll(async () => {
    stack = await startStack({ connections: { support: {} } });
    const { broker } = stack.local;
    const by = { name: 'test' };
    await broker.definitions.putTemplate(
      'mail',
      simulatorTemplate(stack, ['https://graph.microsoft.com/User.Read']),
      by,
      {},
    );
    const now = new Date(stack.clock.now()).toISOString();
    await mapWithConcurrency(ids, 8, async (id) => {
      await broker.definitions.putConnection(id, { template: 'mail' }, by, {});
      // Every one connected except desk-007 (never) and desk-100 (its grant died).
      if (id === 'desk-007') return;
      await broker.store.setSecret(`rt-${id}`, `refresh-token-of-${id}`, {
        tags:
          id === 'desk-100'
            ? {
                status: 'needs_consent',
                account: `${id}@contoso.com`,
                consentedAt: now,
                lastError: 'invalid_grant',
              }
            : { status: 'connected', account: `${id}@contoso.com`, consentedAt: now, refreshedAt: now },
      });
    });
  });
  afterAll(() => stack.close());

  const COUNTING = 'This instance is reading every connection for the first time';
  /** The page once this instance has read every connection (reloading while it says it is counting). */
  const counted = async (query: string, key: string | null = FUNCTION_KEY) => {
    let answer = await html(query, key);
    for (let i = 0; i < 100; i++) {
      const text = await answer.clone().text();
      if (!text.includes(COUNTING)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await html(query, key);
    }
    return answer;
  };

  it('the first request of a deployment nobody has counted yet: the first 200 by id, while the instance counts', async () => {
    const first = await html(`?code=${FUNCTION_KEY}`, null);
    expect(first.status).toBe(200);
    const page = await first.text();
    expect(page).toContain(`${COUNTING}, so there are no counts yet.`);
    expect(page).toContain('Shown: the first 200 connections by id. 2 of them need a person');
    expect(page).toContain('Reload shortly for the full list');
    expect(page).not.toContain('need attention');
    expect(page).not.toContain('class="pager"');
    expect(page).not.toContain('page=2');
    expect(page).toContain(`<input type="hidden" name="code" value="${FUNCTION_KEY}">`);
    expect(page.match(/<tr>\n<td>/g)).toHaveLength(200);
    // desk-007 and desk-100 (within the first 200 by id) above the healthy ones; support (past them) not yet.
    const needing = page.slice(page.indexOf('Needs a person'), page.indexOf('Healthy'));
    for (const id of ['desk-007', 'desk-100']) expect(needing).toContain(`<code>${id}</code>`);
    expect(page).toContain('<code>desk-199</code>');
    expect(page).not.toContain('<code>support</code>');
    // Reloaded once counted: every connection needing a person on page 1, with the counts.
    const full = await (await counted(`?code=${FUNCTION_KEY}`, null)).text();
    expect(full).not.toContain(COUNTING);
    expect(full).toContain('3 of 251 connections need attention.');
    expect(full).toContain('<code>support</code>');
  });

  it('shows those needing a person first, then pages of 200 with links that keep code=', async () => {
    const first = await counted(`?code=${FUNCTION_KEY}`, null);
    expect(first.status).toBe(200);
    const page = await first.text();
    expect(page).toContain('3 of 251 connections need attention.');
    const needing = page.slice(page.indexOf('Needs a person'), page.indexOf('Healthy ('));
    for (const id of ['desk-007', 'desk-100', 'support']) expect(needing).toContain(`<code>${id}</code>`);
    expect(page).toContain('page 1 of 2');
    expect(page).toContain(`href="/api/status?page=2&#38;code=${FUNCTION_KEY}"`);
    expect(page).toContain(`<input type="hidden" name="code" value="${FUNCTION_KEY}">`);
    expect(page.match(/<tr>\n<td>/g)).toHaveLength(200);
    // 3 needing a person, then 197 healthy by id: desk-000 … desk-198 without desk-007 and desk-100.
    expect(page).toContain('<code>desk-198</code>');
    expect(page).not.toContain('<code>desk-199</code>');

    const second = await (await html(`?page=2&code=${FUNCTION_KEY}`, null)).text();
    expect(second).toContain('page 2 of 2');
    expect(second).toContain(`href="/api/status?code=${FUNCTION_KEY}"`);
    expect(second.match(/<tr>\n<td>/g)).toHaveLength(51);
    expect(second).toContain('<code>desk-199</code>');
    expect(second).toContain('<code>desk-249</code>');
    expect(second).not.toContain('Needs a person');
  });

  it('searches by id or account; with the key in a header no link carries it', async () => {
    const found = await (await html('?q=desk-24')).text();
    expect(found).toContain('1–10 of 10 matching (of 251)');
    expect(found.match(/<tr>\n<td>/g)).toHaveLength(10);
    expect(found).toContain('value="desk-24"');
    expect(found).not.toContain('code=');
    const byAccount = await (await html('?q=desk-100%40contoso')).text();
    expect(byAccount.match(/<tr>\n<td>/g)).toHaveLength(1);
    expect(byAccount).toContain('<code>desk-100</code>');
    const none = await (await html('?q=nobody')).text();
    expect(none).toContain('No connection matches.');
    expect((await html('?page=0')).status).toBe(400);
    expect((await html(`?q=${'x'.repeat(201)}`)).status).toBe(400);
  });

  it('JSON stays whole by default; top pages it by id with nextLink', async () => {
    const whole = (await (await stack.api('/api/status')).json()) as { connections: { id: string }[] };
    expect(whole.connections).toHaveLength(251);
    const seen: string[] = [];
    let url: string | null = '/api/status?top=100';
    while (url) {
      const body = (await (await stack.api(url)).json()) as {
        connections: { id: string }[];
        nextLink: string | null;
      };
      seen.push(...body.connections.map((c) => c.id));
      url = body.nextLink ? body.nextLink.slice(stack.url.length) : null;
    }
    expect(seen).toEqual([...ids, 'support']);
    expect((await stack.api('/api/status?top=1001')).status).toBe(400);
    expect((await stack.api('/api/status?skipToken=nope')).status).toBe(400);
  });
  it('after a restart, page 1 comes from the stored digest, its rows read afresh, until the instance has read them all', async () => {
    await html('');
    await stack.restart();
    const cold = await (await html('')).text();
    expect(cold).toContain('Counts as of');
    expect(cold).toContain('3 of 251 connections need attention.');
    const needing = cold.slice(cold.indexOf('Needs a person'), cold.indexOf('Healthy ('));
    for (const id of ['desk-007', 'desk-100', 'support']) expect(needing).toContain(`<code>${id}</code>`);
    expect(cold.match(/<tr>\n<td>/g)).toHaveLength(200);
    expect(cold).toContain('<code>desk-198</code>');
    // Meanwhile the instance reads every connection; the next page is its own count.
    let warm = cold;
    for (let i = 0; i < 50 && warm.includes('Counts as of'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      warm = await (await html('')).text();
    }
    expect(warm).not.toContain('Counts as of');
    expect(warm).toContain('3 of 251 connections need attention.');
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseForm } from '../fakes/consent-client.js';
import { openLink, postForm } from '../support/invitation-client.js';
import { FUNCTION_KEY, findLeaks, type Stack, simulatorTemplate, startStack } from './harness.js';

/**
 * The status page's admin forms over real HTTP: every POST needs the anti-forgery token (and no
 * cross-site origin); a refused form is the page again with its 4xx, nothing changed.
 */
describe('status page forms', () => {
  let stack: Stack;
  const tokens: string[] = [];
  let statusUrl: string;
  let form: { action: string; af: string; cookie: string };

  const submit = async (fields: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await postForm(
      form.action,
      new URLSearchParams({ af: form.af, ...fields }),
      form.cookie,
      headers,
    );
    return { res, html: await res.text() };
  };

  beforeAll(async () => {
    stack = await startStack({ connections: { declared: {} } });
    await stack.api('/api/templates/mail', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(simulatorTemplate(stack, ['https://graph.microsoft.com/Mail.Read'])),
    });
    statusUrl = `${stack.url}/api/status?code=${FUNCTION_KEY}`;
    const page = await openLink(statusUrl);
    const { action, fields } = parseForm(page.html, statusUrl);
    form = { action, af: fields.get('af')!, cookie: page.cookie };
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack, tokens)).toEqual([]));

  it('refuses a POST without the token, with a wrong one, or from another site: 403, nothing made', async () => {
    const fields = new URLSearchParams({ do: 'invite', connection: 'declared' });
    expect((await postForm(form.action, fields, form.cookie)).status).toBe(403);
    fields.set('af', 'C'.repeat(43));
    expect((await postForm(form.action, fields, form.cookie)).status).toBe(403);
    fields.set('af', form.af);
    expect(
      (await postForm(form.action, fields, form.cookie, { 'sec-fetch-site': 'cross-site' })).status,
    ).toBe(403);
    expect((await postForm(form.action, fields, '')).status).toBe(403);
    expect(await stack.local.broker.invitations.list('declared')).toEqual([]);
  });

  it('adds a managed connection, refuses a bad or existing id and a declared delete with the page and a 4xx', async () => {
    const added = await submit({ do: 'add', id: 'desk1', template: 'mail', displayName: 'Desk <one>' });
    expect(added.res.status).toBe(200);
    expect(added.html).toContain('desk1 is added');
    expect(added.html).toContain('Desk &#60;one&#62;');
    expect(added.html).not.toContain('Desk <one>');
    expect((await submit({ do: 'add', id: 'Bad Id!', template: 'mail' })).res.status).toBe(400);
    expect((await submit({ do: 'add', id: 'desk1', template: 'mail' })).res.status).toBe(412);
    expect((await submit({ do: 'add', id: 'declared', template: 'mail' })).res.status).toBe(409);
    expect((await submit({ do: 'add', id: 'desk2', template: 'nope' })).res.status).toBe(400);
    expect((await submit({ do: 'delete', connection: 'declared', confirm: 'yes' })).res.status).toBe(409);
    expect((await submit({ do: 'launch' })).res.status).toBe(400);
    const list = (await (await stack.api('/api/connections?source=managed')).json()) as {
      connections: { id: string }[];
    };
    expect(list.connections.map((c) => c.id)).toEqual(['desk1']);
  });

  it('delete asks first; deleting revokes the pending invitations, so an id made again inherits none', async () => {
    const invited = await submit({ do: 'invite', connection: 'desk1' });
    const url = /id="invitation-url" type="text" readonly value="([^"]+)"/.exec(invited.html)![1]!;
    tokens.push(url.split('/').pop()!);
    expect(invited.html).toContain('<script nonce=');
    expect(invited.res.headers.get('content-security-policy')).toMatch(/script-src 'nonce-/);

    const asked = await submit({ do: 'delete', connection: 'desk1' });
    expect(asked.html).toContain('Delete connection <code>desk1</code>?');
    expect((await stack.api('/api/connections/desk1')).status).toBe(200);
    expect((await submit({ do: 'delete', connection: 'desk1', confirm: 'yes' })).html).toContain(
      'desk1 is deleted',
    );
    expect((await stack.api('/api/connections/desk1')).status).toBe(404);
    // Made again under the same id: the old link does not open it.
    expect((await submit({ do: 'add', id: 'desk1', template: 'mail' })).res.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await openLink(url)).res.status).toBe(410);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consent } from '../fakes/consent-client.js';
import {
  CLIENT_ID,
  CLIENT_SECRET_NAME,
  findLeaks,
  type Stack,
  simulatorTemplate,
  startStack,
} from './harness.js';

/**
 * The admin API (docs/connections.md) through the embedded host over real HTTP: templates,
 * managed connections, ETags and conditions, the `errors` list, paging, the audit lines, and a
 * managed connection consented and vending tokens with no restart.
 */
describe('admin API: connections and templates at runtime', () => {
  let stack: Stack;
  interface Entry {
    id: string;
    source: string;
    template?: string;
    definition: Record<string, unknown>;
    effective: Record<string, unknown> | null;
    etag?: string;
    createdBy?: { name: string };
    updatedBy?: { name: string };
  }
  const json = (body: unknown, headers: Record<string, string> = {}) => ({
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });
  const put = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    stack.api(path, { method: 'PUT', ...json(body, headers) });
  const del = (path: string, headers: Record<string, string> = {}) =>
    stack.api(path, { method: 'DELETE', headers });
  const template = () =>
    simulatorTemplate(stack, ['https://graph.microsoft.com/User.Read'], {
      allowedScopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
    });

  beforeAll(async () => {
    stack = await startStack({
      connections: { support: {} },
      env: (simUrl) => ({
        BROKER_CONNECTIONS: JSON.stringify({
          templates: {
            'file-mail': { provider: 'entra', authority: simUrl, clientId: CLIENT_ID, scopes: ['openid'] },
          },
          connections: {
            support: {
              provider: 'entra',
              authority: simUrl,
              tenant: 'organizations',
              clientId: CLIENT_ID,
              credential: { type: 'secret', secretName: CLIENT_SECRET_NAME },
              scopes: ['https://graph.microsoft.com/User.Read'],
            },
            'file-desk': { template: 'file-mail', expectedAccount: 'desk@contoso.com' },
          },
        }),
      }),
    });
  });
  afterAll(() => stack.close());
  afterEach(async () => expect(await findLeaks(stack)).toEqual([]));

  it('creates a template (201, ETag), reads it back, and replaces it only with the right If-Match', async () => {
    const created = await put('/api/templates/support-mail', template());
    expect(created.status).toBe(201);
    const etag = created.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(((await created.json()) as { name: string; source: string }).source).toBe('managed');

    const got = await stack.api('/api/templates/support-mail');
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe(etag);

    const stale = await put('/api/templates/support-mail', template(), { 'if-match': '"0000"' });
    expect(stale.status).toBe(412);
    expect(((await stale.json()) as { code: string }).code).toBe('precondition_failed');
    const again = await put('/api/templates/support-mail', template(), { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    const replaced = await put('/api/templates/support-mail', template(), { 'if-match': etag });
    expect(replaced.status).toBe(200);
    expect(replaced.headers.get('etag')).not.toBe(etag);
  });

  it('creates a connection on the template: definition as written, effective merged, arrays replaced', async () => {
    const res = await put(
      '/api/connections/desk1',
      {
        template: 'support-mail',
        expectedAccount: 'desk1@contoso.com',
        displayName: 'Desk 1',
        scopes: ['openid'],
      },
      { 'if-none-match': '*' },
    );
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${stack.url}/api/connections/desk1`);
    const entry = (await res.json()) as Entry;
    expect(entry).toMatchObject({
      id: 'desk1',
      source: 'managed',
      template: 'support-mail',
      definition: { template: 'support-mail', expectedAccount: 'desk1@contoso.com' },
      createdBy: { name: 'function-key' },
    });
    expect(entry.effective).toMatchObject({ clientId: CLIENT_ID, scopes: ['openid'], rotateAfter: 'PT24H' });
    expect(stack.logs.join('\n')).toMatch(/connection\.created.*desk1/);
  });

  it('a managed connection is consented and vends tokens with no restart', async () => {
    await put('/api/connections/desk2', { template: 'support-mail' });
    const res = await consent(stack.url, stack.local.functionKey, 'desk2', { account: 'desk2@contoso.com' });
    expect(res.status).toBe(200);
    const token = await stack.api('/api/token?connection=desk2');
    expect(token.status).toBe(200);
    const status = (await (await stack.api('/api/status')).json()) as { connections: { id: string }[] };
    expect(status.connections.map((c) => c.id)).toContain('desk2');
    // Rotation sees it too, from its next pass.
    const pass = await stack.local.broker.rotation.rotationPass({ force: true });
    expect(pass.find((r) => r.connection === 'desk2')?.outcome).toBe('rotated');
  });

  it('refuses a template change that would break a connection on it, naming the connection', async () => {
    const res = await put('/api/templates/support-mail', { ...template(), provider: 'sharepoint-acs' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { path: string; message: string }[] };
    expect(body.errors.some((e) => e.message.includes('connection "desk1"'))).toBe(true);
    expect((await stack.api('/api/token?connection=desk1')).status).toBe(409);
  });

  it('answers 400 with every schema violation by dotted path, and writes nothing', async () => {
    const res = await put('/api/connections/bad', {
      template: 'support-mail',
      scopes: ['ok', 'has space'],
      credential: { type: 'secret', secretName: 'rt-stolen' },
      color: 'blue',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; errors: { path: string; message: string }[] };
    expect(body.code).toBe('invalid_request');
    const paths = body.errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['scopes.1', 'credential.secretName', '']));
    expect((await stack.api('/api/connections/bad')).status).toBe(404);

    const notJson = await put('/api/connections/bad', '{nope');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { errors: { path: string }[] }).errors).toEqual([
      { path: '', message: 'the body is not valid JSON' },
    ]);
    const noTemplate = await put('/api/connections/bad', { template: 'nope' });
    expect(((await noTemplate.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('template');
    const badTemplate = await put('/api/templates/bad', { scopes: 'x', secret: 's3cr3t-value' });
    expect(badTemplate.status).toBe(400);
    expect(await badTemplate.text()).not.toContain('s3cr3t-value');
  });

  it('keeps a failed PUT from touching the old definition', async () => {
    const before = (await (await stack.api('/api/connections/desk1')).json()) as Entry;
    const res = await put('/api/connections/desk1', { template: 'support-mail', tenant: 'not a tenant!' });
    expect(res.status).toBe(400);
    const after = (await (await stack.api('/api/connections/desk1')).json()) as Entry;
    expect(after.etag).toBe(before.etag);
  });

  it('refuses a body over 64 KiB with 413', async () => {
    const res = await put('/api/connections/big', {
      template: 'support-mail',
      displayName: 'x'.repeat(70_000),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('payload_too_large');
  });

  it('shows declared connections and templates, and refuses to change them (409 declared_in_config)', async () => {
    const got = await stack.api('/api/connections/file-desk');
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBeNull();
    const entry = (await got.json()) as Entry;
    expect(entry).toMatchObject({ source: 'declared', template: 'file-mail' });
    expect(entry.effective).toMatchObject({ expectedAccount: 'desk@contoso.com', scopes: ['openid'] });
    for (const res of [
      await put('/api/connections/support', { template: 'support-mail' }),
      await del('/api/connections/support'),
      await put('/api/templates/file-mail', template()),
      await del('/api/templates/file-mail'),
    ]) {
      expect(res.status).toBe(409);
      expect(((await res.json()) as { code: string }).code).toBe('declared_in_config');
    }
  });

  it('pages through both sources ordered by id, with filters and nextLink', async () => {
    for (const id of ['p-a', 'p-b', 'p-c']) await put(`/api/connections/${id}`, { template: 'support-mail' });
    const ids: string[] = [];
    let link: string | null = `${stack.url}/api/connections?top=2`;
    let pages = 0;
    while (link) {
      const res = await stack.api(link.slice(stack.url.length));
      expect(res.status).toBe(200);
      const page = (await res.json()) as { connections: Entry[]; nextLink: string | null };
      expect(page.connections.length).toBeLessThanOrEqual(2);
      ids.push(...page.connections.map((c) => c.id));
      link = page.nextLink;
      pages++;
    }
    expect(pages).toBeGreaterThan(2);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(['support', 'file-desk', 'desk1', 'p-a', 'p-b', 'p-c']));
    const declared = (await (await stack.api('/api/connections?source=declared')).json()) as {
      connections: Entry[];
    };
    expect(declared.connections.map((c) => c.id)).toEqual(['file-desk', 'support']);
    const onTemplate = (await (
      await stack.api('/api/connections?template=support-mail&source=managed')
    ).json()) as {
      connections: Entry[];
    };
    expect(onTemplate.connections.every((c) => c.template === 'support-mail')).toBe(true);
    const templates = (await (await stack.api('/api/templates')).json()) as { templates: { name: string }[] };
    expect(templates.templates.map((t) => t.name)).toEqual(['file-mail', 'support-mail']);
  });

  it('answers 400 for bad query parameters, ids and headers', async () => {
    for (const path of [
      '/api/connections?top=1001',
      '/api/connections?top=0',
      '/api/connections?source=other',
      '/api/connections?skipToken=%21%21',
      '/api/connections/Not_An_Id',
      '/api/templates/-x',
    ]) {
      const res = await stack.api(path);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
    const badMatch = await put('/api/connections/desk1', { template: 'support-mail' }, { 'if-match': 'abc' });
    expect(badMatch.status).toBe(400);
    const badNone = await put(
      '/api/connections/desk1',
      { template: 'support-mail' },
      { 'if-none-match': '"x"' },
    );
    expect(badNone.status).toBe(400);
  });

  it('needs the function key (401) and the right method (405)', async () => {
    expect((await stack.api('/api/connections', { key: null })).status).toBe(401);
    expect((await stack.api('/api/connections/desk1', { method: 'DELETE', key: null })).status).toBe(401);
    expect((await stack.api('/api/connections/desk1', { method: 'POST' })).status).toBe(405);
    expect((await stack.api('/api/templates', { method: 'PUT' })).status).toBe(405);
  });

  it('refuses to delete a template in use (409), then deletes with If-Match, and 404s after', async () => {
    const inUse = await del('/api/templates/support-mail');
    expect(inUse.status).toBe(409);
    expect(((await inUse.json()) as { code: string }).code).toBe('template_in_use');

    await put('/api/templates/spare', template());
    const got = await stack.api('/api/templates/spare');
    expect((await del('/api/templates/spare', { 'if-match': '"0"' })).status).toBe(412);
    expect((await del('/api/templates/spare', { 'if-match': got.headers.get('etag')! })).status).toBe(204);
    const gone = await stack.api('/api/templates/spare');
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { code: string }).code).toBe('unknown_template');
    expect((await del('/api/templates/spare')).status).toBe(404);
  });

  it('deletes a connection: definition, refresh token and cached tokens go; token and consent answer 404', async () => {
    expect((await stack.api('/api/token?connection=desk2')).status).toBe(200);
    expect(await stack.local.broker.store.getSecret('rt-desk2')).toBeDefined();
    expect((await del('/api/connections/desk2', { 'if-match': '"stale"' })).status).toBe(412);
    const res = await del('/api/connections/desk2');
    expect(res.status).toBe(204);
    expect(await stack.local.broker.store.getSecret('rt-desk2')).toBeUndefined();
    const token = await stack.api('/api/token?connection=desk2');
    expect(token.status).toBe(404);
    expect(((await token.json()) as { code: string }).code).toBe('unknown_connection');
    expect((await stack.api('/api/start?connection=desk2')).status).toBe(404);
    expect((await stack.api('/api/connections/desk2')).status).toBe(404);
    expect((await del('/api/connections/desk2')).status).toBe(404);
    expect(stack.logs.join('\n')).toMatch(/connection\.deleted.*desk2/);
  });

  it('a connection created again under a deleted id inherits none of its callers', async () => {
    const callersOf = async (id: string) => {
      const status = (await (await stack.api('/api/status')).json()) as {
        connections: { id: string; callers: { name: string }[] }[];
      };
      return status.connections.find((c) => c.id === id)?.callers.map((u) => u.name);
    };
    expect((await put('/api/connections/desk3', { template: 'support-mail' })).status).toBe(201);
    const consented = await consent(stack.url, stack.local.functionKey, 'desk3', {
      account: 'desk3@contoso.com',
    });
    expect(consented.status).toBe(200);
    expect((await stack.api('/api/token?connection=desk3')).status).toBe(200);
    expect(await callersOf('desk3')).toHaveLength(1);
    expect((await del('/api/connections/desk3')).status).toBe(204);
    expect((await put('/api/connections/desk3', { template: 'support-mail' })).status).toBe(201);
    expect(await callersOf('desk3')).toEqual([]);
  });
});

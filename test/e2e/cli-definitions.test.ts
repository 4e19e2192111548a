import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, childEnv, runNode } from '../support/process.js';
import { CLIENT_ID, FUNCTION_KEY, findLeaks, type Stack, simulatorTemplate, startStack } from './harness.js';

/**
 * `broker connections …` / `broker templates …` as a user runs them: a child process, against the
 * configured store (the data dir the running host uses) and against the host over HTTP (`--url`).
 */
describe('broker connections / templates', { timeout: 90_000 }, () => {
  let stack: Stack;
  let dir: string;
  const outputs: string[] = [];
  const run = async (args: string[], input = '', env: Record<string, string> = {}) => {
    const r = await runNode(CLI_MAIN, args, childEnv({ ...stack.env, ...env }), input);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const remote = (args: string[], input = '') => run([...args, '--url', stack.url], input);
  const template = () => simulatorTemplate(stack, ['https://graph.microsoft.com/User.Read']);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'broker-cli-defs-'));
    stack = await startStack({ connections: { support: {} } });
  });
  afterAll(async () => {
    for (const out of outputs)
      for (const s of [...stack.sim.issuedSecrets(), stack.clientSecret]) expect(out).not.toContain(s);
    expect(await findLeaks(stack)).toEqual([]);
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts a template from --file and a connection from stdin in the configured store; the host serves them', async () => {
    const file = join(dir, 'mail.json');
    await writeFile(file, JSON.stringify(template()));
    const t = await run(['templates', 'put', 'mail', '--file', file]);
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^Created template mail \(etag [0-9a-f]+\)\.$/m);

    const c = await run(
      ['connections', 'put', 'desk1'],
      JSON.stringify({ template: 'mail', expectedAccount: 'desk1@contoso.com' }),
    );
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^Created connection desk1 /m);
    const again = await run(['connections', 'put', 'desk1'], JSON.stringify({ template: 'mail' }));
    expect(again.stdout).toMatch(/^Updated connection desk1 /m);

    const list = await run(['connections', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split('\n')).toEqual(['desk1\tmanaged\tmail', 'support\tdeclared\t-']);
    const managed = await run(['connections', 'list', '--source', 'managed', '--json']);
    expect(
      managed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['desk1']);

    const got = await run(['connections', 'get', 'desk1']);
    const entry = JSON.parse(got.stdout);
    expect(entry).toMatchObject({
      id: 'desk1',
      source: 'managed',
      template: 'mail',
      createdBy: { name: 'cli' },
    });
    expect(entry.effective.clientId).toBe(CLIENT_ID);

    // The running host takes the CLI's write from the store's change feed, no restart.
    await stack.local.broker.connections.sync();
    expect((await stack.local.broker.connections.get('desk1')).template).toBe('mail');
    const start = await stack.api('/api/start?connection=desk1');
    expect(start.status).toBe(302);
  });

  it('prints a refused definition as code: detail with each errors path, exit 1', async () => {
    const bad = await run(
      ['connections', 'put', 'desk-bad'],
      JSON.stringify({ template: 'mail', scopes: 'not-a-list', expectedAccount: 42 }),
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^broker: invalid_request: The definition is not valid/m);
    expect(bad.stderr).toMatch(/^ {2}scopes: /m);
    expect(bad.stderr).toMatch(/^ {2}expectedAccount: /m);
    const notJson = await run(['connections', 'put', 'desk-bad'], '{nope');
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toContain('broker: invalid_request: the definition is not valid JSON');
    const declared = await run(['connections', 'rm', 'support']);
    expect(declared.code).toBe(1);
    expect(declared.stderr).toMatch(/^broker: declared_in_config: /m);
    const inUse = await run(['templates', 'rm', 'mail']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/^broker: template_in_use: /m);
    const usage = await run(['connections', 'put']);
    expect(usage.code).toBe(2);
    const unknownFlag = await run(['connections', 'list', '--nope']);
    expect(unknownFlag.code).toBe(2);
  });

  it('--url: the same commands through the admin routes of a running broker with the function key', async () => {
    const put = await remote(['connections', 'put', 'desk2'], JSON.stringify({ template: 'mail' }));
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^Created connection desk2 \(etag [0-9a-f]+\)\.$/m);
    // Written through the host: in effect there at once.
    expect(stack.local.broker.connections.peek('desk2')?.template).toBe('mail');
    const got = JSON.parse((await remote(['connections', 'get', 'desk2'])).stdout);
    expect(got.createdBy).toEqual({ name: 'function-key' });

    const list = await remote(['connections', 'list', '--template', 'mail']);
    expect(list.stdout.trim().split('\n')).toEqual(['desk1\tmanaged\tmail', 'desk2\tmanaged\tmail']);
    const templates = await remote(['templates', 'list']);
    expect(templates.stdout.trim()).toBe('mail\tmanaged');

    const bad = await remote(['connections', 'put', 'desk3'], JSON.stringify({ template: 'nope' }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^broker: invalid_request: /m);
    expect(bad.stderr).toMatch(/^ {2}template: /m);

    const removed = await remote(['connections', 'rm', 'desk2']);
    expect(removed.code).toBe(0);
    expect(removed.stdout.trim()).toBe('Deleted connection desk2.');
    const gone = await remote(['connections', 'get', 'desk2']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^broker: unknown_connection: There is no connection "desk2"/m);
    expect((await stack.api('/api/token?connection=desk2')).status).toBe(404);
  });

  it('--url: a wrong key is refused (exit 1); no key and no scope is a usage error (exit 2)', async () => {
    const wrong = await run(['connections', 'list', '--url', stack.url, '--key', 'wrong-key']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^broker: unauthorized: /m);
    const none = await run(['connections', 'list', '--url', stack.url], '', { BROKER_FUNCTION_KEY: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--key');
    expect(FUNCTION_KEY).not.toBe('wrong-key');
  });

  it('invite: a link the owner opens without a key, locally and with --url; a bad duration is exit 2, an unknown id exit 1', async () => {
    const local = await run(['invite', 'support', '--expires', 'P2D', '--note', 'for the desk']);
    expect(local.stderr).toBe('');
    expect(local.code).toBe(0);
    const [url, said] = local.stdout.trim().split('\n');
    expect(url).toMatch(new RegExp(`^${stack.url}/api/connect/[A-Za-z0-9_-]{22,}$`));
    expect(said).toMatch(/^Invitation \S+ for support expires \d{4}-/);
    const page = await fetch(url!, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Continue to sign in');

    const viaHost = await remote(['invite', 'support', '--replace']);
    expect(viaHost.code).toBe(0);
    expect(viaHost.stdout).toMatch(/any account may take the connection over/);
    const listed = await stack.api('/api/connections/support/invitations');
    expect(((await listed.json()) as { invitations: unknown[] }).invitations.length).toBeGreaterThanOrEqual(
      2,
    );

    expect((await run(['invite', 'support', '--expires', 'soon'])).code).toBe(2);
    const unknown = await remote(['invite', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^broker: unknown_connection: /m);
    // The links were printed for the admin, never logged by the host.
    for (const line of [url!]) expect(stack.logs.join('\n')).not.toContain(line.split('/').at(-1));
  });
});

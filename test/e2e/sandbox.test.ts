import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import { consent } from '../fakes/consent-client.js';
import { freePort } from '../support/net.js';
import { childEnv, LOCAL_MAIN, runNode, startNode } from '../support/process.js';

/**
 * `npm start` on a fresh clone: no configuration, so the embedded host serves the `sandbox`
 * connection against its built-in sign-in simulator. Run as a real child process.
 */
describe('npm start without configuration (sandbox)', () => {
  let cwd: string;
  let port: number;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'broker-sandbox-'));
    port = await freePort();
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  const env = () => childEnv({ PORT: String(port) });

  it('serves consent and tokens, survives a restart, stops on SIGTERM, and leaks nothing', async () => {
    const first = startNode(LOCAL_MAIN, env(), cwd);
    const [, key] = await first.waitFor(/Function key from .*\(generated\): (\S+)/);
    await first.waitFor(/curl -H/);
    const url = `http://127.0.0.1:${port}`;
    expect(first.output()).toContain(`Status page: http://localhost:${port}/api/status?code=${key}`);

    const status = await fetch(`${url}/api/status`, {
      headers: { 'x-functions-key': key!, accept: 'text/html' },
    });
    expect(status.status).toBe(200);
    const page = await status.text();
    expect(page).toContain('sandbox');
    expect(page).toContain('Not connected');
    expect(page).toContain('/api/start?connection=sandbox');

    const done = await consent(url, key!, 'sandbox', { account: 'newcomer@contoso.com' });
    expect(done.status).toBe(200);
    expect(done.body).toContain('newcomer@contoso.com');

    const res = await fetch(`${url}/api/token?connection=sandbox`, { headers: { 'x-functions-key': key! } });
    expect(res.status).toBe(200);
    const token = (await res.json()) as { access_token: string };
    const me = await fetch(`${url}/sandbox/graph/v1.0/me`, {
      headers: { authorization: `Bearer ${token.access_token}` },
    });
    expect(me.status).toBe(200);

    // The app-only sandbox connection: no sign-in, an app token for its one mailbox.
    const app = await fetch(
      `${url}/api/token?connection=sandbox-app&format=xoauth2&user=desk%40contoso.com`,
      {
        headers: { 'x-functions-key': key! },
      },
    );
    expect(app.status).toBe(200);
    const appToken = (await app.json()) as { access_token: string; xoauth2: string };
    const claims = JSON.parse(Buffer.from(appToken.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ idtyp: 'app', aud: 'https://outlook.office365.com' });
    expect(claims.roles).toContain('IMAP.AccessAsApp');

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = startNode(LOCAL_MAIN, env(), cwd);
    await second.waitFor(/curl -H/);
    expect(second.output()).toContain(`: ${key}`);
    const again = await fetch(`${url}/api/token?connection=sandbox`, {
      headers: { 'x-functions-key': key! },
    });
    expect(again.status).toBe(200);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const dataDir = join(cwd, '.broker');
    const store = await FileSecretStore.open(dataDir);
    const refreshToken = (await store.getSecret('rt-sandbox'))!.value;
    const clientSecret = (await store.getSecret('sandbox-client-secret'))!.value;
    const secrets = [token.access_token, appToken.access_token, refreshToken, clientSecret];
    const output = first.output() + second.output();
    for (const s of secrets) expect(output).not.toContain(s);
    for (const name of await readdir(dataDir, { recursive: true })) {
      const path = join(dataDir, name);
      const text = await readFile(path).catch(() => Buffer.alloc(0));
      for (const s of secrets) expect(text.toString('latin1')).not.toContain(s);
    }
  });

  it('fails fast on an invalid connections file, naming the connection and the field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'broker-badconfig-'));
    await writeFile(
      join(dir, 'connections.json'),
      JSON.stringify({
        connections: { support: { provider: 'entra', clientId: 'x', scopes: ['User.Read'], tenant: '!' } },
      }),
    );
    const result = await runNode(LOCAL_MAIN, [], childEnv({ PORT: '0' }), '', dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/connection "support": field "tenant"/);
    await rm(dir, { recursive: true, force: true });
  });
});

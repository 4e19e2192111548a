import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import { consent } from '../fakes/consent-client.js';
import { CLI_MAIN, childEnv, runNode } from '../support/process.js';
import { type Stack, startStack } from './harness.js';

/** The `broker` command as a user runs it: a child process on the same data dir as the broker. */
describe('broker CLI', () => {
  let stack: Stack;
  const cli = (args: string[], input = '') => runNode(CLI_MAIN, args, childEnv(stack.env), input);
  const outputs: string[] = [];
  const run = async (args: string[], input = '') => {
    const r = await cli(args, input);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  beforeAll(async () => {
    stack = await startStack({
      connections: { legacy: {}, spare: {}, support: { expectedAccount: 'legacy@contoso.com' } },
    });
  });
  afterAll(async () => {
    const secrets = [...stack.sim.issuedSecrets(), stack.clientSecret, 'cli-secret-value-42'];
    for (const out of outputs) for (const s of secrets) expect(out).not.toContain(s);
    await stack.close();
  });

  it('secrets set reads the value from stdin, never from argv', async () => {
    const refused = await run(['secrets', 'set', 'other-secret', 'cli-secret-value-42']);
    expect(refused.code).toBe(2);
    const ok = await run(['secrets', 'set', 'other-secret'], 'cli-secret-value-42\n');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/Stored secret other-secret \(version [0-9a-f]{32}\) in the file store/);
    const store = await FileSecretStore.open(stack.dataDir);
    expect((await store.getSecret('other-secret'))!.value).toBe('cli-secret-value-42');
  });

  it('import redeems a refresh token made elsewhere once and stores the rotated one', async () => {
    // A token "made with the old script": consent on another connection, then take its refresh token.
    expect(
      (await consent(stack.url, stack.local.functionKey, 'legacy', { account: 'legacy@contoso.com' })).status,
    ).toBe(200);
    const old = (await stack.local.broker.store.getSecret('rt-legacy'))!.value;
    const imported = await run(['import', 'support'], `${old}\n`);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain('connection support is connected as legacy@contoso.com');
    expect(stack.sim.stats.refreshRedemptions.get(old)).toBe(1);
    const store = await FileSecretStore.open(stack.dataDir);
    const stored = await store.getSecret('rt-support');
    expect(stored!.value).not.toBe(old);
    expect(stored!.tags).toMatchObject({ status: 'connected', account: 'legacy@contoso.com' });
  });

  it('import enforces expectedAccount, storing nothing for another account', async () => {
    expect(
      (await consent(stack.url, stack.local.functionKey, 'spare', { account: 'intruder@contoso.com' }))
        .status,
    ).toBe(200);
    const theirs = (await stack.local.broker.store.getSecret('rt-spare'))!.value;
    const versions = (await stack.local.broker.store.listVersions('rt-support')).length;
    const r = await run(['import', 'support'], `${theirs}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('must be connected by legacy@contoso.com');
    expect((await stack.local.broker.store.listVersions('rt-support')).length).toBe(versions);
  });

  it('import refuses a token the provider rejects, storing nothing', async () => {
    const r = await run(['import', 'legacy'], 'not-a-refresh-token\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^broker: /);
    expect(r.stderr).not.toContain('not-a-refresh-token');
  });

  it('status lists every connection', async () => {
    const r = await run(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^legacy\tconnected\tlegacy@contoso.com/m);
    expect(r.stdout).toMatch(/^support\tconnected\tlegacy@contoso.com/m);
  });

  it('rotate ID rotates now and writes a new version', async () => {
    const store = await FileSecretStore.open(stack.dataDir);
    const before = (await store.listVersions('rt-support')).length;
    const r = await run(['rotate', 'support']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('support\trotated');
    expect((await store.listVersions('rt-support')).length).toBe(before + 1);
    const unknown = await run(['rotate', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('There is no connection "nope"');
  });
});

describe('broker callers and the who-may-ask checks', () => {
  const OID = '11111111-1111-4111-8111-111111111111';
  const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
  const env = (extra: Record<string, string>) =>
    childEnv({
      BROKER_CONNECTIONS: JSON.stringify({
        connections: {
          mailbox: {
            provider: 'entra',
            clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
            scopes: ['https://graph.microsoft.com/Mail.Read'],
            callers: [{ name: 'ticket-engine', objectId: OID }],
          },
          orphan: {
            provider: 'entra',
            clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
            scopes: ['User.Read'],
          },
        },
      }),
      BROKER_DATA_DIR: dataDir,
      ...extra,
    });
  let dataDir = '';
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'broker-cli-callers-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it("lists a connection's callers, and says when there are none", async () => {
    const listed = await runNode(CLI_MAIN, ['callers', 'mailbox'], env({}));
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`ticket-engine\t${OID}`);
    const none = await runNode(CLI_MAIN, ['callers', 'orphan'], env({}));
    expect(none.stdout).toContain('lists no callers');
    const unknown = await runNode(CLI_MAIN, ['callers', 'nope'], env({}));
    expect(unknown.code).not.toBe(0);
  });

  it('check warns about connections without callers under entra, and easyauth without the platform', async () => {
    const r = await runNode(
      CLI_MAIN,
      ['check'],
      env({
        CALLER_AUTH: 'entra',
        ADMIN_AUTH: 'easyauth',
        BROKER_TENANT_ID: TENANT,
        BROKER_API_CLIENT_ID: '0f6c2a9e-3d41-4b8a-a7e5-5c9d1e2b4f60',
      }),
    );
    expect(r.stdout).toMatch(/warn {2}connection orphan: no "callers" under CALLER_AUTH=entra/);
    expect(r.stdout).not.toMatch(/connection mailbox: no "callers"/);
    expect(r.stdout).toMatch(/warn {2}people: ADMIN_AUTH=easyauth but WEBSITE_AUTH_ENABLED is not True/);
  });
});

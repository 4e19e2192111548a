import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBroker, runLocal } from '../../src/local/run.js';
import { consent } from '../fakes/consent-client.js';
import { startEntraSimulator } from '../fakes/entra.js';
import { type KeyVaultFake, startKeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import { lineLogger } from '../support/logs.js';
import { freePort } from '../support/net.js';

/**
 * Two broker instances (two embedded hosts with their own catalogs, caches and Key Vault clients)
 * share one Azurite (definitions in Table Storage, the blob lease lock) and one Key Vault simulator
 * with purge protection, as the Bicep deploys it. A connection created, consented, deleted and
 * created again on one instance is seen by the other within 30 s; the re-created one never gets
 * its predecessor's grant, and any account may consent to it.
 */
const KEY = 'propagation-function-key-0123456789';
const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
/** The instances pick up each other's changes this often (default 15 s; shortened to keep the test quick). */
const SYNC_MS = 2000;
const WITHIN_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('connections at runtime across two instances (Azurite + Key Vault with purge protection)', () => {
  let azurite: Azurite;
  let vault: KeyVaultFake;
  let sim: Awaited<ReturnType<typeof startEntraSimulator>>;
  let dataDir: string;
  const hosts: LocalBroker[] = [];
  const logs: string[][] = [];

  const api = (host: LocalBroker, path: string, init: RequestInit = {}) =>
    fetch(`${host.url}${path}`, {
      ...init,
      headers: { 'x-functions-key': KEY, 'content-type': 'application/json', ...init.headers },
      redirect: 'manual',
    });
  const tokenStatus = async (host: LocalBroker, id: string) =>
    (await api(host, `/api/token?connection=${id}`)).status;
  /** Milliseconds until `host` answers `status` for the connection's token. */
  const until = async (host: LocalBroker, id: string, status: number): Promise<number> => {
    const started = Date.now();
    while (Date.now() - started < WITHIN_MS + 5000) {
      if ((await tokenStatus(host, id)) === status) return Date.now() - started;
      await sleep(100);
    }
    return Number.POSITIVE_INFINITY;
  };
  const accountOf = async (host: LocalBroker, id: string) => {
    const { access_token } = (await (await api(host, `/api/token?connection=${id}`)).json()) as {
      access_token: string;
    };
    const me = await fetch(`${sim.url}/graph/v1.0/me`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    return ((await me.json()) as { userPrincipalName: string }).userPrincipalName;
  };

  beforeAll(async () => {
    azurite = await startAzurite({ tables: true });
    vault = await startKeyVaultSimulator({ purgeProtection: true });
    const ports = [await freePort(), await freePort()];
    const secret = `client-secret-${Math.random().toString(36).slice(2)}`;
    sim = await startEntraSimulator({
      clients: [
        { clientId: CLIENT_ID, secret, redirectUris: ports.map((p) => `http://127.0.0.1:${p}/api/callback`) },
      ],
    });
    dataDir = await mkdtemp(join(tmpdir(), 'broker-propagation-'));
    const setup = await vault.createStore();
    await setup.setSecret('app-secret', secret);
    for (const [i, port] of ports.entries()) {
      const { logger, lines } = lineLogger();
      logs.push(lines);
      hosts.push(
        await runLocal({
          env: {
            BROKER_CONNECTIONS: JSON.stringify({
              templates: {
                mail: {
                  provider: 'entra',
                  authority: sim.url,
                  tenant: 'organizations',
                  clientId: CLIENT_ID,
                  credential: { type: 'secret', secretName: 'app-secret' },
                  scopes: ['https://graph.microsoft.com/User.Read'],
                },
              },
              connections: {},
            }),
            KEY_VAULT_URL: vault.url,
            AzureWebJobsStorage: azurite.connectionString,
            BROKER_DATA_DIR: join(dataDir, String(i)),
            BROKER_PUBLIC_URL: `http://127.0.0.1:${port}`,
            BROKER_FUNCTION_KEY: KEY,
            PORT: String(port),
          },
          overrides: {
            store: await vault.createStore({ attemptTimeoutMs: 2000, deadlineMs: 5000 }),
            logger,
            catalogSyncIntervalMs: SYNC_MS,
          },
          timers: false,
        }),
      );
    }
  }, 60_000);
  afterAll(async () => {
    for (const h of hosts) await h.close();
    await sim?.close();
    await vault?.close();
    await azurite?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('a connection created on one instance is in effect there at once and on the other within 30 s', async () => {
    const [a, b] = hosts as [LocalBroker, LocalBroker];
    expect(await tokenStatus(b, 'desk1')).toBe(404);
    const put = await api(a, '/api/connections/desk1', {
      method: 'PUT',
      body: JSON.stringify({ template: 'mail', expectedAccount: 'desk1@contoso.com' }),
    });
    expect(put.status).toBe(201);
    // Known, never consented: 409 consent_required, not 404.
    expect(await tokenStatus(a, 'desk1')).toBe(409);
    const seen = await until(b, 'desk1', 409);
    expect(seen).toBeLessThan(WITHIN_MS);
    console.log(`propagation: created on A, seen on B after ${seen} ms (sync every ${SYNC_MS} ms)`);

    const consented = await consent(b.url, KEY, 'desk1', { account: 'desk1@contoso.com' });
    expect(consented.status).toBe(200);
    expect(await accountOf(a, 'desk1')).toBe('desk1@contoso.com');
    expect(await accountOf(b, 'desk1')).toBe('desk1@contoso.com');
  }, 60_000);

  it('a delete answers 404 at once where it was made and within 30 s on the other, cached tokens gone', async () => {
    const [a, b] = hosts as [LocalBroker, LocalBroker];
    expect(await tokenStatus(b, 'desk1')).toBe(200);
    const del = await api(a, '/api/connections/desk1', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await tokenStatus(a, 'desk1')).toBe(404);
    const gone = await until(b, 'desk1', 404);
    expect(gone).toBeLessThan(WITHIN_MS);
    console.log(`propagation: deleted on A, 404 on B after ${gone} ms`);
    // The refresh token is soft-deleted: recoverable, not readable.
    expect(await a.broker.store.getSecret('rt-desk1')).toBeUndefined();
    expect(logs[0]!.join('\n')).toMatch(/"event":"connection\.deleted".*"connection":"desk1"/);
  }, 60_000);

  it('the same id created again consents anew over the soft-deleted secret, any account, never the old grant', async () => {
    const [a, b] = hosts as [LocalBroker, LocalBroker];
    const put = await api(a, '/api/connections/desk1', {
      method: 'PUT',
      body: JSON.stringify({ template: 'mail' }),
      headers: { 'if-none-match': '*' },
    });
    expect(put.status).toBe(201);
    expect(await until(b, 'desk1', 409)).toBeLessThan(WITHIN_MS);
    // Nothing of the old grant is served: the new connection is not connected until someone consents.
    expect(await tokenStatus(a, 'desk1')).toBe(409);

    const recoversBefore = vault.sim.stats.byOperation.recover ?? 0;
    // Another account than the old one's, without replace=true: the old account pin is gone.
    const consented = await consent(b.url, KEY, 'desk1', { account: 'new-owner@contoso.com' });
    expect(consented.status).toBe(200);
    expect(vault.sim.stats.byOperation.recover ?? 0).toBe(recoversBefore + 1);
    expect(await accountOf(b, 'desk1')).toBe('new-owner@contoso.com');
    expect(await accountOf(a, 'desk1')).toBe('new-owner@contoso.com');
  }, 60_000);

  it('with Table Storage down: writes answer 503 with Retry-After, known connections still vend', async () => {
    const [a] = hosts as [LocalBroker, LocalBroker];
    expect(await tokenStatus(a, 'desk1')).toBe(200);
    await azurite.stop();
    try {
      const put = await api(a, '/api/connections/desk9', {
        method: 'PUT',
        body: JSON.stringify({ template: 'mail' }),
      });
      expect(put.status).toBe(503);
      expect(put.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await put.json()) as { code: string }).code).toBe('upstream_unavailable');
      expect(await tokenStatus(a, 'desk1')).toBe(200);
    } finally {
      await azurite.start();
    }
  }, 60_000);
});

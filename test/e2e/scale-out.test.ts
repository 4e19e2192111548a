import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../src/lib/store/file-store.js';
import { oidcConsent } from '../fakes/oidc-consent.js';
import { type OidcFake, startOidcProvider } from '../fakes/oidc-provider.js';
import { type Azurite, startAzurite } from '../support/azurite.js';
import type { LogLine } from '../support/logs.js';
import { freePort } from '../support/net.js';
import { childEnv, LOCAL_MAIN, ROOT, startNode } from '../support/process.js';
import { type StallingProxy, startStallingProxy } from '../support/stalling-proxy.js';

/**
 * Issue 9: three embedded hosts in separate processes share one store (the embedded file store in one
 * data dir: with every write of `rt-{id}` under the refresh lock, it is safe for several processes on
 * one machine) and one Azurite, in front of oidc-provider with refresh-token rotation and reuse
 * detection. Access tokens live 35 s and REFRESH_AHEAD is a minute, so every request starts a
 * refresh (one at a time per instance), and each instance's rotation timer rotates every second.
 * Every instance reaches the provider through its own forwarder, so the test can tell which one
 * holds the lease and freeze it there.
 */

const KEY = 'scale-out-function-key-0123456789';
const CLIENT_ID = 'scale-out-client';
const SECRET_NAME = 'app-secret';
const CONNECTION = 'scaled';
const ACCESS_TOKEN_TTL_S = 35;
/** How long all three are hammered; `SCALE_OUT_SECONDS` makes it a longer soak. */
const HAMMER_MS = Number(process.env.SCALE_OUT_SECONDS ?? 40) * 1000;
const LEASE_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Host {
  index: number;
  url: string;
  proxy: StallingProxy;
  proc: ReturnType<typeof startNode>;
  alive: boolean;
  /** Structured log lines from line `from` on. */
  lines(from?: number): LogLine[];
  mark(): number;
}

/** What the provider saw, from its own events: every refresh token presented, every one issued. */
function trackProvider(op: OidcFake) {
  const presented = new Map<string, number>();
  const issued: string[] = [];
  const refreshedAt: number[] = [];
  const present = (ctx: KoaContextWithOIDC) => {
    const token = ctx.oidc?.params?.refresh_token;
    if (ctx.oidc?.params?.grant_type === 'refresh_token' && typeof token === 'string')
      presented.set(token, (presented.get(token) ?? 0) + 1);
  };
  op.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    present(ctx);
    if (ctx.oidc.params?.grant_type === 'refresh_token') refreshedAt.push(performance.now());
    const body = ctx.body as { refresh_token?: unknown } | undefined;
    if (typeof body?.refresh_token === 'string') issued.push(body.refresh_token);
  });
  op.provider.on('grant.error', (ctx: KoaContextWithOIDC) => present(ctx));
  return {
    presented,
    issued,
    refreshedAt,
    refreshes: () => op.stats.grants.refresh_token ?? 0,
    mostPresentations: () => Math.max(0, ...presented.values()),
  };
}

/** One embedded host per port (chosen before the provider started: its client lists their callbacks). */
async function startHosts(options: {
  ports: number[];
  issuer: string;
  dataDir: string;
  env: Record<string, string>;
}): Promise<Host[]> {
  return Promise.all(
    options.ports.map(async (port, index) => {
      const url = `http://127.0.0.1:${port}`;
      const proxy = await startStallingProxy(options.issuer);
      const connections = {
        connections: {
          [CONNECTION]: {
            provider: 'oauth2',
            issuer: options.issuer,
            tokenEndpoint: `${proxy.url}/token`,
            clientId: CLIENT_ID,
            credential: { type: 'secret', secretName: SECRET_NAME },
            scopes: ['openid', 'api.read'],
            rotateAfter: 'PT1S',
          },
        },
      };
      const proc = startNode(
        LOCAL_MAIN,
        childEnv({
          PORT: String(port),
          BROKER_PUBLIC_URL: url,
          BROKER_DATA_DIR: options.dataDir,
          BROKER_FUNCTION_KEY: KEY,
          BROKER_CONNECTIONS: JSON.stringify(connections),
          ROTATION_SCHEDULE: '* * * * * *',
          REFRESH_AHEAD: 'PT1M',
          ...options.env,
        }),
        ROOT,
      );
      await proc.waitFor(/Token broker listening/);
      const lines = (from = 0): LogLine[] =>
        proc
          .output()
          .split('\n')
          .slice(from)
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine);
      return {
        index,
        url,
        proxy,
        proc,
        alive: true,
        lines,
        mark: () => proc.output().split('\n').length - 1,
      };
    }),
  );
}

async function stopHosts(hosts: Host[]): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      h.alive = false;
      if (h.proc.child.exitCode === null && h.proc.child.signalCode === null) h.proc.child.kill('SIGKILL');
      await h.proc.exited;
      await h.proxy.close();
    }),
  );
}

interface Answer {
  host: number;
  at: number;
  status: number;
  code?: string;
  detail?: string;
}

/** Callers on every live host, each asking for a token again `pauseMs` after its last answer. */
function hammer(hosts: Host[], loopsPerHost = 2, pauseMs = 10) {
  let running = true;
  const answers: Answer[] = [];
  const lastToken = new Map<number, string>();
  const loops = hosts.flatMap((h) =>
    Array.from({ length: loopsPerHost }, async () => {
      while (running && h.alive) {
        const answer: Answer = { host: h.index, at: performance.now(), status: 0 };
        try {
          const res = await fetch(`${h.url}/api/token?connection=${CONNECTION}`, {
            headers: { 'x-functions-key': KEY },
          });
          answer.status = res.status;
          const body = (await res.json()) as { access_token?: string; code?: string; detail?: string };
          if (body.access_token) lastToken.set(h.index, body.access_token);
          answer.code = body.code;
          answer.detail = body.detail;
        } catch {
          if (!h.alive) break;
        }
        answers.push(answer);
        await sleep(pauseMs);
      }
    }),
  );
  return {
    answers,
    lastToken,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function p99(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)];
}

/** Lease cycles from the hosts' `lock.released` lines: a refresh's time is its wait plus its hold. */
function lockFigures(hosts: Host[], marks: number[]) {
  const cycles = hosts.flatMap((h) =>
    h.lines(marks[h.index]).filter((l) => l.event === 'lock.released' && l.connection === CONNECTION),
  );
  const total = (l: LogLine) => (l.waitMs as number) + (l.heldMs as number);
  const waited = cycles.filter((l) => (l.polls as number) > 0);
  const free = cycles.filter((l) => (l.polls as number) === 0);
  return {
    leases: cycles.length,
    lockWaits: waited.length,
    p99Uncontended: p99(free.map(total)),
    p99Contended: p99(waited.map(total)),
    p99Hold: p99(cycles.map((l) => l.heldMs as number)),
    maxWait: Math.max(0, ...cycles.map((l) => l.waitMs as number)),
    lost: cycles.filter((l) => l.lost).length,
  };
}

describe('scale-out: three instances, one grant, one Azurite', () => {
  let azurite: Azurite;
  beforeAll(async () => {
    // Tables too: with AzureWebJobsStorage set, managed connection definitions live there.
    azurite = await startAzurite({ tables: true });
  });
  afterAll(async () => {
    await azurite?.close();
  });

  describe('with the blob lease lock (REFRESH_LOCK default)', () => {
    let op: OidcFake;
    let provider: ReturnType<typeof trackProvider>;
    let hosts: Host[] = [];
    let dataDir: string;
    let store: FileSecretStore;
    const figures: Record<string, unknown> = {};

    const storeHoldsLastIssued = async () => {
      for (let i = 0; i < 60; i++) {
        const stored = (await store.getSecret(`rt-${CONNECTION}`))?.value;
        if (stored !== undefined && stored === provider.issued.at(-1)) return true;
        await sleep(50);
      }
      return false;
    };
    /** Alive = every live host vends a token the provider itself accepts, and nothing was revoked. */
    const grantAlive = async () => {
      expect(op.stats.revokedGrants).toBe(0);
      for (const h of hosts.filter((x) => x.alive)) {
        const res = await fetch(`${h.url}/api/token?connection=${CONNECTION}`, {
          headers: { 'x-functions-key': KEY },
        });
        expect(res.status, `host ${h.index}`).toBe(200);
        const { access_token } = (await res.json()) as { access_token: string };
        const me = await fetch(`${op.issuer}/me`, { headers: { authorization: `Bearer ${access_token}` } });
        expect(me.status, `userinfo via host ${h.index}`).toBe(200);
      }
    };
    const assertNoReuse = () => {
      expect(op.stats.reuseDetected).toBe(0);
      expect(op.stats.errors).toEqual([]);
      expect(op.stats.serverErrors).toEqual([]);
      expect(provider.mostPresentations()).toBe(1);
    };

    beforeAll(async () => {
      const port = await freePort();
      const issuer = `http://127.0.0.1:${port}`;
      dataDir = await mkdtemp(join(tmpdir(), 'broker-scale-'));
      store = await FileSecretStore.open(dataDir);
      const secret = `client-secret-${Math.random().toString(36).slice(2)}`;
      await store.setSecret(SECRET_NAME, secret);
      // The hosts' URLs are known only once they start; the provider accepts any loopback callback here.
      const hostPorts = await Promise.all([freePort(), freePort(), freePort()]);
      op = await startOidcProvider({
        port,
        accessTokenTtl: ACCESS_TOKEN_TTL_S,
        scopes: ['api.read'],
        clients: [
          {
            clientId: CLIENT_ID,
            clientSecret: secret,
            redirectUris: hostPorts.map((p) => `http://127.0.0.1:${p}/api/callback`),
          },
        ],
      });
      provider = trackProvider(op);
      hosts = await startHosts({
        ports: hostPorts,
        issuer,
        dataDir,
        env: { AzureWebJobsStorage: azurite.connectionString },
      });
    }, 30_000);
    afterAll(async () => {
      await stopHosts(hosts);
      await op?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      console.log(`scale-out figures: ${JSON.stringify(figures, null, 2)}`);
    });

    it(
      'hammered on all three: constant refreshes, zero reuse, the grant alive, the store current',
      async () => {
        const consented = await oidcConsent(hosts[0]!.url, KEY, CONNECTION, { login: 'alice@example.com' });
        expect(consented.status).toBe(200);
        const marks = hosts.map((h) => h.mark());
        const before = provider.refreshes();
        const started = performance.now();
        const load = hammer(hosts, 1, 5);
        await sleep(HAMMER_MS);
        await load.stop();
        const duration = performance.now() - started;
        // The timers keep rotating: read both counts together, a moment after the last answer.
        await sleep(200);
        const refreshes = provider.refreshes() - before;
        const lock = lockFigures(hosts, marks);
        const statuses = countBy(load.answers.map((a) => String(a.status)));
        Object.assign(figures, {
          instances: hosts.length,
          durationS: Math.round(duration / 100) / 10,
          refreshes,
          refreshesPerSecond: Math.round(refreshes / (duration / 1000)),
          requests: load.answers.length,
          answers: statuses,
          ...lock,
        });

        assertNoReuse();
        expect(await storeHoldsLastIssued()).toBe(true);
        await grantAlive();
        // Every refresh ran under a lease (give or take one still running per instance), none was lost.
        expect(lock.lost).toBe(0);
        expect(lock.leases).toBeGreaterThanOrEqual(refreshes - hosts.length);
        expect(lock.lockWaits).toBeGreaterThan(0);
        // Refreshing all the time: at least a few per second whatever else the machine runs.
        expect(refreshes).toBeGreaterThan((3 * HAMMER_MS) / 1000);
        expect(statuses).toEqual({ 200: load.answers.length });
        // Each instance had its share of the lease.
        for (const h of hosts) {
          const own = h.lines(marks[h.index]).filter((l) => l.event === 'lock.released').length;
          expect(own, `host ${h.index}`).toBeGreaterThan(HAMMER_MS / 1000);
        }
      },
      HAMMER_MS + 30_000,
    );

    it('storage stopped mid-run: callers get 503 upstream_unavailable, nothing is refreshed unlocked, service resumes', async () => {
      const load = hammer(hosts, 1, 20);
      await sleep(1000);
      await azurite.stop();
      const stoppedAt = performance.now();
      // A refresh already holding its lease may finish; none may start after that.
      await sleep(1000);
      const refreshesWhileDown = provider.refreshes();
      for (let i = 0; i < 100 && !load.answers.some((a) => a.at > stoppedAt && a.status === 503); i++)
        await sleep(100);
      const first503 = load.answers.find((a) => a.at > stoppedAt && a.status === 503);
      expect(first503).toMatchObject({ code: 'upstream_unavailable' });
      expect(first503?.detail).toMatch(/refresh lock's storage/);
      await sleep(2000);
      expect(provider.refreshes()).toBe(refreshesWhileDown);
      const downFor = performance.now() - stoppedAt;

      await azurite.start();
      const restartedAt = performance.now();
      const back = new Set<number>();
      while (back.size < hosts.length && performance.now() - restartedAt < 15_000) {
        for (const a of load.answers) if (a.at > restartedAt && a.status === 200) back.add(a.host);
        await sleep(100);
      }
      const resumedAfter = performance.now() - restartedAt;
      await sleep(1000);
      await load.stop();
      expect(back.size).toBe(hosts.length);
      expect(load.answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
      assertNoReuse();
      expect(await storeHoldsLastIssued()).toBe(true);
      await grantAlive();
      figures.storageOutage = {
        downS: Math.round(downFor / 100) / 10,
        firstUnavailableAfterMs: Math.round(first503!.at - stoppedAt),
        answers503: load.answers.filter((a) => a.status === 503).length,
        allHostsServingAgainAfterMs: Math.round(resumedAfter),
      };
    }, 40_000);

    it('a host killed (SIGKILL) while holding the lease: the others continue once it expires', async () => {
      const victim = hosts[2]!;
      const load = hammer(hosts);
      await sleep(500);
      victim.proxy.stall();
      // Its refresh request is held at its forwarder: it is inside the refresh, holding the lease.
      await victim.proxy.stalledRequest();
      victim.alive = false;
      victim.proc.child.kill('SIGKILL');
      const killedAt = performance.now();
      await victim.proc.exited;
      victim.proxy.dropStalled();
      for (let i = 0; i < 200 && !provider.refreshedAt.some((t) => t > killedAt); i++) await sleep(100);
      const next = provider.refreshedAt.find((t) => t > killedAt);
      expect(next).toBeDefined();
      const recoveredAfter = next! - killedAt;
      await sleep(1500);
      await load.stop();
      // Blocked by the dead holder's lease, and for no longer than one lease period (plus a poll).
      expect(recoveredAfter).toBeGreaterThan(LEASE_MS - 5000);
      expect(recoveredAfter).toBeLessThan(LEASE_MS + 3000);
      const survivors = load.answers.filter((a) => a.host !== victim.index);
      expect(survivors.filter((a) => a.status !== 200)).toEqual([]);
      assertNoReuse();
      expect(await storeHoldsLastIssued()).toBe(true);
      await grantAlive();
      figures.crashedHolder = {
        leaseS: LEASE_MS / 1000,
        othersRefreshedAgainAfterMs: Math.round(recoveredAfter),
        survivorAnswers: survivors.length,
      };
    }, 40_000);
  });

  describe('with the lock switched off (REFRESH_LOCK=process)', () => {
    let op: OidcFake;
    let hosts: Host[] = [];
    let dataDir: string;
    afterAll(async () => {
      await stopHosts(hosts);
      await op?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('the same scenario fails: two instances redeem one refresh token and the provider revokes the grant', async () => {
      const port = await freePort();
      const issuer = `http://127.0.0.1:${port}`;
      dataDir = await mkdtemp(join(tmpdir(), 'broker-unlocked-'));
      const store = await FileSecretStore.open(dataDir);
      const secret = `client-secret-${Math.random().toString(36).slice(2)}`;
      await store.setSecret(SECRET_NAME, secret);
      const hostPorts = await Promise.all([freePort(), freePort(), freePort()]);
      op = await startOidcProvider({
        port,
        accessTokenTtl: ACCESS_TOKEN_TTL_S,
        scopes: ['api.read'],
        clients: [
          {
            clientId: CLIENT_ID,
            clientSecret: secret,
            redirectUris: hostPorts.map((p) => `http://127.0.0.1:${p}/api/callback`),
          },
        ],
      });
      const provider = trackProvider(op);
      hosts = await startHosts({
        ports: hostPorts,
        issuer,
        dataDir,
        env: { AzureWebJobsStorage: azurite.connectionString, REFRESH_LOCK: 'process' },
      });
      expect((await oidcConsent(hosts[0]!.url, KEY, CONNECTION)).status).toBe(200);
      const load = hammer(hosts);
      for (let i = 0; i < 150 && op.stats.reuseDetected === 0; i++) await sleep(100);
      await sleep(500);
      await load.stop();
      expect(op.stats.reuseDetected).toBeGreaterThan(0);
      expect(op.stats.revokedGrants).toBeGreaterThan(0);
      expect(provider.mostPresentations()).toBeGreaterThan(1);
      // The connection is lost until a person consents again.
      const res = await fetch(`${hosts[0]!.url}/api/token?connection=${CONNECTION}`, {
        headers: { 'x-functions-key': KEY },
      });
      expect(res.status).toBe(409);
      expect(((await res.json()) as { code: string }).code).toBe('consent_required');
      expect(hosts.flatMap((h) => h.lines()).filter((l) => l.event.startsWith('lock.'))).toEqual([]);
    }, 40_000);
  });
});

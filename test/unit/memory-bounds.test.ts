/**
 * What bounds each per-key structure (docs/architecture.md, "Memory"): request input that names
 * nothing configured leaves nothing behind, and what grows with time is pruned. Counts, not timings.
 */
import { createHash, createSign, randomUUID, X509Certificate } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { FUNCTION_KEY_CALLER } from '../../src/lib/auth/caller-gate.js';
import { ManualClock } from '../../src/lib/clock.js';
import { CallerActivity } from '../../src/lib/health/caller-activity.js';
import { InProcessLock } from '../../src/lib/lock/lock.js';
import { GrantStore as BrokerGrantStore } from '../../src/lib/tokens/grant-store.js';
import {
  authenticateAssertion,
  JWT_BEARER,
  rememberedJtis,
} from '../../src/local/sandbox/entra/client-assertion.js';
import type { SimulatorContext, SimulatorRequest } from '../../src/local/sandbox/entra/context.js';
import { DeviceAuthorizations, MAX_DEVICE_CODES } from '../../src/local/sandbox/entra/device.js';
import { GrantStore, MAX_CODES, TOKENS_PER_GRANT } from '../../src/local/sandbox/entra/grants.js';
import { testConnection } from '../fakes/connections.js';
import { MemorySecretStore } from '../fakes/memory-store.js';
import { DAY_MS, services } from '../fakes/services.js';
import { testCertificate } from '../fakes/tls.js';
import { rejection } from '../support/errors.js';

const CLIENT = '11111111-0000-4000-8000-000000000001';
const TID = '72f988bf-0000-4000-8000-00000000c0de';
const MINUTE = 60_000;

/** Private fields read for their size only: the bound is the behaviour under test. */
const sizeOf = (owner: object, field: string): number =>
  (owner as Record<string, Map<unknown, unknown>>)[field]!.size;

describe('the broker under request input that names nothing configured', () => {
  it('caches nothing for unknown connections or scopes outside the policy', async () => {
    const world = services([testConnection('mail')]);
    await world.seedGrant('mail', 'rt-seed');
    for (let i = 0; i < 500; i++) {
      expect((await rejection(world.tokens.getAccessToken(`unknown-${i}`))).code).toBe('unknown_connection');
      expect((await rejection(world.tokens.getAccessToken('mail', [`api://x-${i}/.default`]))).code).toBe(
        'scope_not_allowed',
      );
    }
    expect(sizeOf(world.tokens, 'cache')).toBe(0);
    expect(sizeOf(world.tokens, 'inflight')).toBe(0);
    await world.tokens.getAccessToken('mail');
    await world.tokens.getAccessToken('mail');
    expect(sizeOf(world.tokens, 'cache')).toBe(1);
    expect(sizeOf(world.tokens, 'inflight')).toBe(0);
  });

  it('keeps no lock entry once a holder is done, whether it succeeded or failed', async () => {
    const lock = new InProcessLock();
    await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) =>
        lock.withLock(`k${i % 30}`, async () => {
          if (i % 3 === 0) throw new Error('failed holder');
          return i;
        }),
      ),
    );
    expect(sizeOf(lock, 'tails')).toBe(0);
  });

  it('remembers one use per caller and connection, however many vends', () => {
    const clock = new ManualClock();
    const activity = new CallerActivity(clock);
    for (let i = 0; i < 1000; i++) {
      clock.advance(1000);
      activity.record('mail', FUNCTION_KEY_CALLER);
    }
    expect(activity.of('mail')).toHaveLength(1);
  });

  it("remembers each caller's last use once, newest first, when several use a connection", () => {
    const clock = new ManualClock();
    const activity = new CallerActivity(clock);
    const caller = (name: string) => ({ ...FUNCTION_KEY_CALLER, name });
    activity.record('mail', caller('desk'));
    clock.advance(1000);
    activity.record('mail', caller('crm'));
    clock.advance(1000);
    for (let i = 0; i < 100; i++) activity.record('mail', caller('desk'));
    expect(activity.of('mail').map((u) => u.name)).toEqual(['desk', 'crm']);
    expect(activity.of('mail')[0]!.at).toBe(new Date(clock.now()).toISOString());
    expect(activity.of('files')).toEqual([]);
  });

  it('holds a read refresh token for the read cache window only, not for every connection ever read', async () => {
    const clock = new ManualClock();
    const store = new MemorySecretStore(() => clock.now());
    const grants = new BrokerGrantStore(store, { readCacheMs: 2000, clock });
    for (let i = 0; i < 1000; i++) {
      await store.setSecret(`rt-c${i}`, `refresh-${i}`, { tags: { status: 'connected' } });
      await grants.read(`c${i}`);
      clock.advance(10);
    }
    // Reads of the last 2 s are kept (a burst of scope sets reads the store once); older ones are gone.
    expect(sizeOf(grants, 'recent')).toBeLessThanOrEqual(201);
    clock.advance(2001);
    await grants.save('c0', 'rotated', { status: 'connected' });
    expect(sizeOf(grants, 'recent')).toBe(1);
    // What is kept is the latest: the saved token, served with no read of the store.
    const get = vi.spyOn(store, 'getSecret');
    expect((await grants.read('c0'))?.refreshToken).toBe('rotated');
    expect(get).not.toHaveBeenCalled();
  });

  it('remembers deadline warnings of the last day only, however often a deadline moves', async () => {
    const world = services([testConnection('mail')]);
    await world.seedGrant('mail', 'rt-seed');
    for (let day = 0; day < 60; day++) {
      // A secret renewed every day for 10 more days: a new deadline, so a new warning, each pass.
      await world.store.setSecret('app-secret', 'client-secret', {
        expiresOn: new Date(world.clock.now() + 10 * DAY_MS),
      });
      await world.rotation.rotationPass();
      world.clock.advance(DAY_MS);
    }
    expect(world.logs.filter((l) => l.event === 'deadline.approaching')).toHaveLength(60);
    expect(sizeOf(world.rotation, 'warnedAt')).toBeLessThanOrEqual(1);
  });
});

describe("the sandbox simulator's memory", () => {
  const request = { redirectUri: 'http://127.0.0.1/api/callback', codeChallenge: 'c' };
  const consent = {
    clientId: CLIENT,
    account: 'a@contoso.com',
    tid: TID,
    scopes: ['User.Read', 'offline_access'],
  };

  it('keeps at most MAX_CODES codes and forgets the grants behind the ones it drops', () => {
    const grants = new GrantStore(() => 0);
    const codes = Array.from({ length: MAX_CODES + 250 }, () =>
      grants.issueCode(grants.add(consent), request),
    );
    expect(grants.sizes.codes).toBe(MAX_CODES);
    expect(grants.sizes.grants).toBe(MAX_CODES);
    expect(grants.findCode(codes[0]!)).toBeUndefined();
    expect(grants.findCode(codes.at(-1)!)).toBeDefined();
  });

  it('keeps an expired code for a while (a late one hears "expired"), then drops it', () => {
    let now = 0;
    const grants = new GrantStore(() => now);
    const late = grants.issueCode(grants.add(consent), request);
    now += 11 * MINUTE;
    grants.issueCode(grants.add(consent), request);
    expect(grants.findCode(late)).toBeDefined();
    now += 10 * MINUTE;
    grants.issueCode(grants.add(consent), request);
    expect(grants.findCode(late)).toBeUndefined();
    expect(grants.sizes).toMatchObject({ codes: 2, grants: 2 });
  });

  it('keeps the newest TOKENS_PER_GRANT refresh tokens of a grant, in memory and in its state file', () => {
    let saved: string | undefined;
    const persistence = {
      load: () => saved,
      save: (state: string) => {
        saved = state;
      },
    };
    const grants = new GrantStore(() => 0, persistence);
    const grant = grants.add(consent);
    const tokens = Array.from({ length: 50 }, () => grants.issueRefreshToken(grant));
    expect(grants.sizes.refreshTokens).toBe(TOKENS_PER_GRANT);
    expect(grants.findRefreshToken(tokens.at(-TOKENS_PER_GRANT)!)).toBeDefined();
    expect(grants.findRefreshToken(tokens.at(-TOKENS_PER_GRANT - 1)!)).toBeUndefined();
    expect((JSON.parse(saved!) as { refreshTokens: unknown[] }).refreshTokens).toHaveLength(TOKENS_PER_GRANT);
    // After a restart the bound still holds: the loaded tokens count.
    const restarted = new GrantStore(() => 0, persistence);
    restarted.issueRefreshToken(restarted.findRefreshToken(tokens.at(-1)!)!.grant);
    expect(restarted.sizes.refreshTokens).toBe(TOKENS_PER_GRANT);
    expect(restarted.findRefreshToken(tokens.at(-TOKENS_PER_GRANT)!)).toBeUndefined();
  });

  it('keeps a grant that has refresh tokens when its code is dropped', () => {
    const grants = new GrantStore(() => 0);
    const grant = grants.add(consent);
    grants.issueCode(grant, request);
    const token = grants.issueRefreshToken(grant);
    for (let i = 0; i < MAX_CODES + 10; i++) grants.issueCode(grants.add(consent), request);
    expect(grants.findRefreshToken(token)?.grant).toBe(grant);
    expect(grants.sizes.grants).toBe(MAX_CODES + 1);
  });

  it('keeps at most MAX_DEVICE_CODES device authorizations, and none long expired', () => {
    let now = 0;
    const grants = new GrantStore(() => now);
    const devices = new DeviceAuthorizations(grants, () => now, { lifetimeSec: 900, intervalSec: 5 });
    const first = devices.start(CLIENT, TID, consent.scopes);
    for (let i = 0; i < MAX_DEVICE_CODES + 100; i++) devices.start(CLIENT, TID, consent.scopes);
    expect(devices.size).toBe(MAX_DEVICE_CODES);
    expect(devices.awaitingPerson(first.userCode)).toBeUndefined();
    now += 31 * MINUTE;
    devices.start(CLIENT, TID, consent.scopes);
    expect(devices.size).toBe(1);
  });

  it("remembers a certificate assertion's jti only while the assertion could still pass", () => {
    const certificate = testCertificate();
    const x5t = createHash('sha256').update(new X509Certificate(certificate.cert).raw).digest('base64url');
    let now = Date.UTC(2026, 0, 1);
    const ctx = {
      now: () => now,
      clients: new Map(),
      issuerBase: () => 'http://127.0.0.1:1',
    } as unknown as SimulatorContext;
    const client = { clientId: CLIENT, redirectUris: [], certificates: [certificate.cert] };
    const present = () => {
      const iat = Math.floor(now / 1000);
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${part({ alg: 'RS256', typ: 'JWT', 'x5t#S256': x5t })}.${part({
        iss: CLIENT,
        sub: CLIENT,
        aud: 'http://127.0.0.1:1/organizations/oauth2/v2.0/token',
        jti: randomUUID(),
        iat,
        nbf: iat,
        exp: iat + 600,
      })}`;
      const signature = createSign('RSA-SHA256').update(input).sign(certificate.key, 'base64url');
      const form = new URLSearchParams({
        client_assertion_type: JWT_BEARER,
        client_assertion: `${input}.${signature}`,
      });
      authenticateAssertion(ctx, { tenant: 'organizations', form } as unknown as SimulatorRequest, client);
    };
    for (let i = 0; i < 20; i++) present();
    expect(rememberedJtis(ctx)).toBe(20);
    // 10 minutes of life and 5 of skew later, none of them could pass the time check again.
    now += 16 * MINUTE;
    present();
    expect(rememberedJtis(ctx)).toBe(1);
  });
});

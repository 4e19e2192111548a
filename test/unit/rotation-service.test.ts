import { describe, expect, it } from 'vitest';
import { TRANSIENT_COOLDOWN_MS } from '../../src/lib/rotation/rotation-service.js';
import { testConnection } from '../fakes/connections.js';
import { providerError } from '../fakes/fake-provider.js';
import { DAY_MS, services, settle } from '../fakes/services.js';

const HOUR = 3_600_000;
const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];

/** RotationService: the timer's rotation pass (DESIGN.md, "Token vending and rotation"). */
describe('RotationService', () => {
  const setup = async (connectionIds = ['a', 'b', 'c'], concurrency = 3) => {
    const world = services(
      connectionIds.map((id) => testConnection(id)),
      { concurrency },
    );
    for (const id of connectionIds) await world.seedGrant(id, `rt-seed-${id}`);
    const outcomes = async () =>
      Object.fromEntries((await world.rotation.rotationPass()).map((r) => [r.connection, r]));
    return { ...world, outcomes };
  };

  it('skips grants refreshed within rotateAfter and those never connected', async () => {
    const world = services([testConnection('a'), testConnection('never')]);
    await world.seedGrant('a', 'rt-seed-a');
    world.clock.advance(23 * HOUR);
    const results = await world.rotation.rotationPass();
    expect(results).toEqual([
      { connection: 'a', outcome: 'skipped', reason: 'fresh' },
      { connection: 'never', outcome: 'skipped', reason: 'not_connected' },
    ]);
    expect(world.provider.refreshes).toHaveLength(0);
  });

  it('rotates grants older than rotateAfter, stores the new token, and then finds them fresh', async () => {
    const { outcomes, clock, provider, storedGrant, tokens } = await setup(['a']);
    clock.advance(25 * HOUR);
    expect((await outcomes()).a).toEqual({ connection: 'a', outcome: 'rotated' });
    const stored = await storedGrant('a');
    expect(stored?.value).toBe('rt-1');
    expect(stored?.tags.refreshedAt).toBe(new Date(clock.now()).toISOString());
    // The access token it minted is served without another refresh.
    expect((await tokens.getAccessToken('a')).accessToken).toBe('at-1');
    clock.advance(HOUR);
    expect((await outcomes()).a?.reason).toBe('fresh');
    expect(provider.refreshes).toHaveLength(1);
  });

  it('rotates with at most `concurrency` refreshes in flight', async () => {
    const { rotation, clock, provider } = await setup(ids, 3);
    clock.advance(25 * HOUR);
    const release = provider.hold();
    const pass = rotation.rotationPass();
    await settle();
    expect(provider.inFlight).toBe(3);
    release();
    const results = await pass;
    expect(results.map((r) => r.outcome)).toEqual(ids.map(() => 'rotated'));
    expect(provider.maxInFlight).toBe(3);
    expect(provider.refreshes).toHaveLength(10);
  });

  it('cools a connection down after a transient failure and retries it after the cooldown', async () => {
    const { outcomes, clock, provider } = await setup(['a']);
    clock.advance(25 * HOUR);
    provider.answer('a', providerError('upstream_unavailable', 'temporarily_unavailable'));
    expect((await outcomes()).a).toMatchObject({ outcome: 'transient', error: 'temporarily_unavailable' });
    clock.advance(TRANSIENT_COOLDOWN_MS - 60_000);
    expect((await outcomes()).a).toMatchObject({ outcome: 'skipped', reason: 'cooldown' });
    expect(provider.refreshes).toHaveLength(1);
    clock.advance(60_000);
    expect((await outcomes()).a).toMatchObject({ outcome: 'rotated' });
  });

  it('marks a dead grant needs_consent and does not ask the provider about it again', async () => {
    const { outcomes, clock, provider, storedGrant, status } = await setup(['a']);
    clock.advance(25 * HOUR);
    provider.answer('a', providerError('consent_required', 'invalid_grant', 700082));
    expect((await outcomes()).a).toEqual({
      connection: 'a',
      outcome: 'needs_consent',
      error: 'invalid_grant AADSTS700082',
    });
    expect((await storedGrant('a'))?.tags.status).toBe('needs_consent');
    expect((await status.health())[0]?.status).toBe('needs_consent');
    clock.advance(2 * DAY_MS);
    expect((await outcomes()).a).toMatchObject({ outcome: 'needs_consent', reason: 'stored' });
    expect(provider.refreshes).toHaveLength(1);
  });

  it('reports a rejected client as client_misconfigured', async () => {
    const { outcomes, clock, provider } = await setup(['a']);
    clock.advance(25 * HOUR);
    provider.answer('a', providerError('client_misconfigured', 'invalid_client', 7000222));
    expect((await outcomes()).a).toMatchObject({
      outcome: 'client_misconfigured',
      error: 'invalid_client AADSTS7000222',
    });
  });

  it('goes on with the other connections when one fails', async () => {
    const { outcomes, clock, provider, storedGrant } = await setup(['a', 'b', 'c'], 1);
    clock.advance(25 * HOUR);
    provider.answer('b', providerError('consent_required', 'invalid_grant'));
    const results = await outcomes();
    expect([results.a?.outcome, results.b?.outcome, results.c?.outcome]).toEqual([
      'rotated',
      'needs_consent',
      'rotated',
    ]);
    expect((await storedGrant('c'))?.value).not.toBe('rt-seed-c');
  });

  it('rotates fresh and cooling-down connections when forced, and only the one asked for', async () => {
    const { rotation, provider } = await setup(['a', 'b']);
    const results = await rotation.rotationPass({ onlyId: 'b', force: true });
    expect(results).toEqual([{ connection: 'b', outcome: 'rotated' }]);
    expect(provider.refreshes.map((r) => r.connection)).toEqual(['b']);
  });

  it('warns of an approaching deadline once a day', async () => {
    const { rotation, clock, store, logs } = await setup(['a']);
    await store.setSecret('app-secret', 'client-secret', { expiresOn: new Date(clock.now() + 10 * DAY_MS) });
    const warnings = () => logs.filter((l) => l.event === 'deadline.approaching');
    await rotation.rotationPass();
    expect(warnings()).toEqual([
      {
        level: 'warn',
        event: 'deadline.approaching',
        fields: {
          connection: 'a',
          kind: 'client_secret_expiry',
          at: new Date(clock.now() + 10 * DAY_MS).toISOString(),
          daysLeft: 10,
          passed: false,
        },
      },
    ]);
    clock.advance(12 * HOUR);
    await rotation.rotationPass();
    expect(warnings()).toHaveLength(1);
    clock.advance(12 * HOUR);
    await rotation.rotationPass();
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]?.fields?.daysLeft).toBe(9);
  });

  it('logs one line per rotated connection and never a token', async () => {
    const { rotation, clock, logs } = await setup(['a', 'b']);
    clock.advance(25 * HOUR);
    await rotation.rotationPass();
    expect(logs.filter((l) => l.event === 'rotation.connection').map((l) => l.fields?.connection)).toEqual([
      'a',
      'b',
    ]);
    expect(logs.find((l) => l.event === 'rotation.pass')?.fields).toMatchObject({
      rotated: 2,
      connections: 2,
    });
    expect(JSON.stringify(logs)).not.toMatch(/rt-seed|rt-\d|at-\d/);
  });
});

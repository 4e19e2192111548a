import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../src/lib/errors.js';
import { testConnection } from '../fakes/connections.js';
import { DEVICE_CODE } from '../fakes/fake-provider.js';
import { services } from '../fakes/services.js';
import { rejection } from '../support/errors.js';

const SECOND = 1000;
const device = { flow: 'device_code' as const, credential: undefined, tenant: 'consumers' };
const outlook = testConnection('outlook', device);
const support = testConnection('support', { ...device, expectedAccount: 'support@outlook.com' });
const uploader = testConnection('uploader');

/** DeviceService: the device code flow (RFC 8628) as `/api/start` + `/api/start/poll` run it. */
describe('DeviceService', () => {
  const setup = async (id = 'outlook') => {
    const world = services([outlook, support, uploader]);
    const started = await world.consent.device.start(id);
    const poll = (attempt = started.attempt) => world.consent.device.poll(id, attempt);
    return { ...world, started, poll };
  };

  it('start shows the user code and seals the device code: it is in nothing returned or logged', async () => {
    const { started, logs, clock } = await setup();
    expect(started).toMatchObject({
      connectionId: 'outlook',
      userCode: 'ABCD-EFGH',
      verificationUri: 'https://login.example.com/device',
      expiresIn: 900,
      interval: 5,
      expiresAt: clock.now() + 900 * SECOND,
      nextPollAt: clock.now() + 5 * SECOND,
    });
    expect(JSON.stringify(started)).not.toContain(DEVICE_CODE);
    const clear = Buffer.from(started.attempt, 'base64url').toString('latin1');
    expect(clear).not.toContain(DEVICE_CODE);
    expect(clear).not.toContain('ABCD-EFGH');
    expect(JSON.stringify(logs)).not.toContain(DEVICE_CODE);
  });

  it('answers a poll sooner than the interval with pending, without asking the provider', async () => {
    const { poll, provider, clock } = await setup();
    clock.advance(4 * SECOND);
    const early = await poll();
    expect(early).toMatchObject({ status: 'pending', interval: 5, userCode: 'ABCD-EFGH' });
    expect(provider.devicePolls).toHaveLength(0);
    clock.advance(SECOND);
    const due = await poll();
    expect(due.status).toBe('pending');
    expect(provider.devicePolls).toEqual([{ connection: 'outlook', deviceCode: DEVICE_CODE }]);
  });

  it('grows the interval by 5 s on slow_down, also for a client that keeps its old poll URL', async () => {
    const { poll, provider, clock, started } = await setup();
    provider.answerPoll('outlook', { status: 'slow_down' });
    clock.advance(5 * SECOND);
    const slowed = await poll();
    if (slowed.status !== 'pending') throw new Error('expected pending');
    expect(slowed.interval).toBe(10);
    expect(slowed.nextPollAt).toBe(clock.now() + 10 * SECOND);
    clock.advance(5 * SECOND);
    await poll(slowed.attempt);
    await poll(started.attempt);
    expect(provider.devicePolls).toHaveLength(1);
    clock.advance(5 * SECOND);
    await poll(slowed.attempt);
    expect(provider.devicePolls).toHaveLength(2);
  });

  it('ends the attempt when the person declines: later polls hear the same, the provider is not asked', async () => {
    const { poll, provider, clock, storedGrant } = await setup();
    provider.answerPoll('outlook', {
      status: 'declined',
      providerError: { error: 'authorization_declined' },
    });
    clock.advance(5 * SECOND);
    const declined = await poll();
    expect(declined).toMatchObject({
      status: 'declined',
      providerError: { error: 'authorization_declined' },
    });
    clock.advance(60 * SECOND);
    expect((await poll()).status).toBe('declined');
    expect(provider.devicePolls).toHaveLength(1);
    expect(await storedGrant('outlook')).toBeUndefined();
  });

  it('ends the attempt when the provider says the code expired', async () => {
    const { poll, provider, clock } = await setup();
    provider.answerPoll('outlook', { status: 'expired', providerError: { error: 'expired_token' } });
    clock.advance(5 * SECOND);
    expect((await poll()).status).toBe('expired');
  });

  it('answers expired once the code has outlived expires_in, without asking the provider', async () => {
    const { poll, provider, clock } = await setup();
    clock.advance(900 * SECOND);
    const late = await poll();
    expect(late.status).toBe('expired');
    expect(provider.devicePolls).toHaveLength(0);
  });

  it('stores the grant and primes the token cache when the sign-in completes', async () => {
    const { poll, provider, clock, storedGrant, tokens } = await setup();
    const signedIn = provider.mint();
    provider.answerPoll('outlook', { status: 'pending' }, { status: 'tokens', tokens: signedIn });
    clock.advance(5 * SECOND);
    expect((await poll()).status).toBe('pending');
    clock.advance(5 * SECOND);
    expect(await poll()).toEqual({
      status: 'connected',
      connectionId: 'outlook',
      account: 'ana@contoso.com',
      tenant: 'tenant-1',
    });
    expect((await storedGrant('outlook'))?.value).toBe(signedIn.refreshToken);
    expect((await tokens.getAccessToken('outlook')).accessToken).toBe(signedIn.accessToken);
    expect(provider.refreshes).toHaveLength(0);
    // A client polling again hears the same, and the provider is not asked again.
    clock.advance(5 * SECOND);
    expect((await poll()).status).toBe('connected');
    expect(provider.devicePolls).toHaveLength(2);
  });

  it('ends with account_mismatch when someone other than expectedAccount signs in, storing nothing', async () => {
    const { poll, provider, clock, storedGrant } = await setup('support');
    provider.answerPoll('support', { status: 'tokens', tokens: provider.mint() });
    clock.advance(5 * SECOND);
    expect((await rejection(poll())).code).toBe('account_mismatch');
    expect(await storedGrant('support')).toBeUndefined();
    clock.advance(5 * SECOND);
    expect((await rejection(poll())).code).toBe('account_mismatch');
    expect(provider.devicePolls).toHaveLength(1);
  });

  it('keeps polling after a provider outage, from the Retry-After on', async () => {
    const { poll, provider, clock } = await setup();
    const outage = new BrokerError('upstream_unavailable', 'The provider is down.', { retryAfter: 30 });
    provider.answerPoll('outlook', outage);
    clock.advance(5 * SECOND);
    expect((await rejection(poll())).code).toBe('upstream_unavailable');
    clock.advance(10 * SECOND);
    expect((await poll()).status).toBe('pending');
    expect(provider.devicePolls).toHaveLength(1);
    clock.advance(20 * SECOND);
    await poll();
    expect(provider.devicePolls).toHaveLength(2);
  });

  it('refuses an attempt that is forged or belongs to another connection', async () => {
    const { consent, started } = await setup();
    const other = await rejection(consent.device.poll('support', started.attempt));
    expect(other.code).toBe('consent_failed');
    const forged = await rejection(consent.device.poll('outlook', `${started.attempt.slice(0, -4)}AAAA`));
    expect(forged.code).toBe('consent_failed');
  });

  it('refuses the device flow for an authorization code connection', async () => {
    const world = services([uploader]);
    const err = await rejection(world.consent.device.start('uploader'));
    expect(err.code).toBe('invalid_request');
    expect(world.provider.deviceStarts).toHaveLength(0);
  });
});

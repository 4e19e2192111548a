import type { Person } from '../auth/person-auth.js';
import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import type { Connection } from '../config/connections.js';
import { seal, unseal } from '../crypto/seal.js';
import { randomToken } from '../crypto/tokens.js';
import { BrokerError, isBrokerError, type ProviderErrorInfo, providerErrorLabel } from '../errors.js';
import { startPath } from '../links.js';
import type { Logger } from '../logger.js';
import { SLOW_DOWN_STEP_S } from '../oauth/index.js';
import type { DeviceAuthorization, DevicePollResult } from '../providers/provider.js';
import type { DialectLookup, GrantService } from '../tokens/grant-service.js';
import type { TokenService } from '../tokens/token-service.js';
import { claimInvitation, completeConsent, type InvitationClaims } from './complete-consent.js';
import type { SealKeyProvider } from './seal-key.js';
import { deviceAttemptSchema, parseSealed, type SealedAttempt } from './sealed-state.js';

const PURPOSE = 'device-poll';
/**
 * A sealed attempt stays readable this long after its device code expired, so a late poll hears
 * "expired" rather than "invalid".
 */
const LATE_GRACE_MS = 10 * 60 * 1000;
/** Attempts this instance remembers (next allowed poll, outcome); the oldest are forgotten first. */
const MAX_TRACKED = 10_000;

/** What travels in the poll URL, sealed (AES-256-GCM): the device code is never in clear. */
/** A started device authorization, as much as the person and the polling client may see. */
export interface DeviceStart {
  connectionId: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** The provider's instruction ("To sign in, use a web browser to open the page …"), when it sent one. */
  message?: string;
  /** Seconds the code lives. */
  expiresIn: number;
  /** Seconds between polls. */
  interval: number;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms before which a poll is answered `pending` without asking the provider. */
  nextPollAt: number;
  /** The sealed poll state, for `/api/start/poll?attempt=`. */
  attempt: string;
}

export type DevicePoll =
  | {
      status: 'pending';
      interval: number;
      expiresIn: number;
      nextPollAt: number;
      /** A fresh sealed attempt: use it for the next poll (the interval may have grown). */
      attempt: string;
      userCode: string;
      verificationUri: string;
    }
  | { status: 'connected'; connectionId: string; account?: string; tenant?: string }
  | { status: 'declined' | 'expired'; detail: string; providerError?: ProviderErrorInfo };

type Outcome = { poll: DevicePoll } | { error: BrokerError };

interface Tracked {
  nextPollAt: number;
  interval: number;
  /** Forgotten after this (epoch ms). */
  keepUntil: number;
  outcome?: Outcome;
}

/**
 * The device authorization grant (RFC 8628) as a serverless function can run it: `start` asks the
 * provider for a code and seals the poll state; every `poll` is at most one token request, driven by
 * the client. Polls sooner than the interval (after `slow_down`, the grown interval) are answered
 * `pending` without calling the provider — also when a client keeps reusing an old poll URL, which
 * the per-instance map of attempts catches. The grant is stored exactly as after the authorization
 * code flow.
 */
/** What both consent flows are built with. */
export interface ConsentDeps {
  catalog: ConnectionCatalog;
  tokens: TokenService;
  grants: GrantService;
  dialect: DialectLookup;
  sealKey: SealKeyProvider;
  clock: Clock;
  logger: Logger;
  /** Invitations: uses up the invitation a consent began from (absent: no consent carries one). */
  invitations?: InvitationClaims;
}

export interface ConsentStartOptions {
  /** Account pinning: another account may take the connection over. */
  replace?: boolean;
  /** Invitations: the invitation (its id) the consent begins from, sealed into its state. */
  invitation?: string;
}

export class DeviceService {
  private readonly attempts = new Map<string, Tracked>();

  constructor(private readonly deps: ConsentDeps) {}

  /** RFC 8628 §3.1–3.2: a new device code and user code for a `device_code` connection. */
  async start(connectionId: string, by?: Person, options: ConsentStartOptions = {}): Promise<DeviceStart> {
    const connection = await this.deps.catalog.get(connectionId);
    const dialect = this.deviceDialect(connection);
    let authorization: DeviceAuthorization;
    try {
      authorization = await dialect.startDeviceAuthorization();
    } catch (err) {
      throw asFailedConsent(err, connection.id);
    }
    const now = this.deps.clock.now();
    const state: SealedAttempt = {
      a: randomToken(16),
      c: connection.id,
      d: authorization.deviceCode,
      i: authorization.interval,
      n: now + authorization.interval * 1000,
      x: now + authorization.expiresIn * 1000,
      u: authorization.userCode,
      v: authorization.verificationUri,
    };
    if (by) state.b = by;
    if (options.replace) state.r = true;
    if (options.invitation) state.inv = options.invitation;
    this.track(state.a, { nextPollAt: state.n, interval: state.i, keepUntil: state.x + LATE_GRACE_MS });
    this.deps.logger.info('consent.device_started', {
      connection: connection.id,
      expiresIn: authorization.expiresIn,
      interval: authorization.interval,
    });
    const started: DeviceStart = {
      connectionId: connection.id,
      userCode: authorization.userCode,
      verificationUri: authorization.verificationUri,
      expiresIn: authorization.expiresIn,
      interval: authorization.interval,
      expiresAt: state.x,
      nextPollAt: state.n,
      attempt: await this.seal(state),
    };
    if (authorization.verificationUriComplete)
      started.verificationUriComplete = authorization.verificationUriComplete;
    if (authorization.message) started.message = authorization.message;
    return started;
  }

  /**
   * RFC 8628 §3.4–3.5: at most one token request. `pending` carries a fresh sealed attempt; a
   * declined or expired sign-in ends the attempt; tokens are stored after the `expectedAccount` check
   * (an other account ends it with `account_mismatch`).
   */
  async poll(
    connectionId: string,
    sealed: string,
    /** Invitations: the anonymous poll route accepts only attempts begun from an invitation. */
    options: { invitationOnly?: boolean } = {},
  ): Promise<DevicePoll> {
    const connection = await this.deps.catalog.get(connectionId);
    const dialect = this.deviceDialect(connection);
    const now = this.deps.clock.now();
    const state = parseSealed(
      deviceAttemptSchema,
      unseal<unknown>(await this.deps.sealKey.get(), PURPOSE, sealed, now),
    );
    if (!state || state.c !== connection.id || (options.invitationOnly && !state.inv)) {
      throw new BrokerError(
        'consent_failed',
        `This sign-in attempt is invalid, belongs to another connection, or is too old. Start again at ${startPath(connection.id)}.`,
        { connectionId: connection.id },
      );
    }
    let tracked = this.attempts.get(state.a);
    if (!tracked) {
      // Another instance started it, or this one forgot: the sealed state is all there is.
      tracked = { nextPollAt: state.n, interval: state.i, keepUntil: state.x + LATE_GRACE_MS };
      this.track(state.a, tracked);
    }
    if (tracked.outcome) return replay(tracked.outcome);
    if (now >= state.x) {
      return this.end(tracked, {
        poll: {
          status: 'expired',
          detail: `The code expired before the sign-in was completed. Start again at ${startPath(connection.id)} for a new code.`,
        },
      });
    }
    // An old poll URL may carry an older (shorter) schedule than this instance knows.
    tracked.nextPollAt = Math.max(tracked.nextPollAt, state.n);
    tracked.interval = Math.max(tracked.interval, state.i);
    if (now < tracked.nextPollAt) return this.pending(state, tracked, now);

    // Reserve the slot before asking: a concurrent poll of the same attempt now waits its turn.
    tracked.nextPollAt = now + tracked.interval * 1000;
    let result: DevicePollResult;
    try {
      result = await dialect.pollDeviceAuthorization(state.d);
    } catch (err) {
      if (isBrokerError(err, 'upstream_unavailable') && err.retryAfter !== undefined) {
        tracked.nextPollAt = Math.max(tracked.nextPollAt, now + err.retryAfter * 1000);
      }
      const failed = asFailedConsent(err, connection.id);
      // A code the provider calls dead stays dead; an outage or a client to fix is worth another poll.
      if (isBrokerError(failed, 'consent_failed')) tracked.outcome = { error: failed };
      throw failed;
    }
    this.deps.logger.debug('consent.device_polled', { connection: connection.id, result: result.status });
    const restart = `Start again at ${startPath(connection.id)}.`;
    switch (result.status) {
      case 'pending':
        return this.pending(state, tracked, now);
      case 'slow_down':
        // RFC 8628 §3.5: this and every later poll waits 5 s longer.
        tracked.interval += SLOW_DOWN_STEP_S;
        tracked.nextPollAt = now + tracked.interval * 1000;
        return this.pending(state, tracked, now);
      case 'declined':
        this.deps.logger.info('consent.device_declined', { connection: connection.id });
        return this.end(tracked, {
          poll: {
            status: 'declined',
            detail: `The sign-in was declined (${said(result.providerError)}). Nothing was stored. ${restart}`,
            providerError: result.providerError,
          },
        });
      case 'expired':
        return this.end(tracked, {
          poll: {
            status: 'expired',
            detail: `The code expired before the sign-in was completed (${said(result.providerError)}). ${restart}`,
            providerError: result.providerError,
          },
        });
      case 'bad_code':
        return this.end(tracked, {
          error: new BrokerError(
            'consent_failed',
            `The provider does not recognise this sign-in attempt (${said(result.providerError)}); it may have been completed or abandoned already. ${restart}`,
            { connectionId: connection.id, providerError: result.providerError },
          ),
        });
      case 'tokens': {
        let outcome: Outcome;
        try {
          const account = await dialect.accountOf(result.tokens);
          const done = await completeConsent(
            this.deps,
            connection,
            result.tokens,
            account,
            state.b,
            state.r === true,
            claimInvitation(this.deps.invitations, connection.id, state.inv, account),
          );
          outcome = { poll: { status: 'connected', ...done } };
        } catch (err) {
          if (!isBrokerError(err)) throw err;
          outcome = { error: err };
        }
        return this.end(tracked, outcome);
      }
    }
  }

  private deviceDialect(connection: Connection) {
    if (!('flow' in connection) || connection.flow !== 'device_code') {
      throw new BrokerError(
        'invalid_request',
        `Connection "${connection.id}" uses the authorization code flow: open ${startPath(connection.id)} in a browser to connect it.`,
        { connectionId: connection.id },
      );
    }
    const dialect = this.deps.dialect(connection);
    const { startDeviceAuthorization, pollDeviceAuthorization } = dialect;
    if (!startDeviceAuthorization || !pollDeviceAuthorization) {
      throw new BrokerError(
        'invalid_request',
        `Connection "${connection.id}": the ${connection.provider} provider does not offer the device code flow in this broker version.`,
        { connectionId: connection.id },
      );
    }
    return {
      startDeviceAuthorization: () => startDeviceAuthorization.call(dialect),
      pollDeviceAuthorization: (deviceCode: string) => pollDeviceAuthorization.call(dialect, deviceCode),
      accountOf: dialect.accountOf.bind(dialect),
    };
  }

  private async pending(state: SealedAttempt, tracked: Tracked, now: number): Promise<DevicePoll> {
    return {
      status: 'pending',
      interval: tracked.interval,
      expiresIn: Math.max(0, Math.ceil((state.x - now) / 1000)),
      nextPollAt: tracked.nextPollAt,
      attempt: await this.seal({ ...state, i: tracked.interval, n: tracked.nextPollAt }),
      userCode: state.u,
      verificationUri: state.v,
    };
  }

  private end(tracked: Tracked, outcome: Outcome): DevicePoll {
    tracked.outcome = outcome;
    return replay(outcome);
  }

  private async seal(state: SealedAttempt): Promise<string> {
    return seal(await this.deps.sealKey.get(), PURPOSE, state, state.x + LATE_GRACE_MS);
  }

  private track(id: string, tracked: Tracked): void {
    this.attempts.set(id, tracked);
    if (this.attempts.size <= MAX_TRACKED) return;
    const now = this.deps.clock.now();
    for (const [key, value] of this.attempts) if (value.keepUntil <= now) this.attempts.delete(key);
    for (const key of this.attempts.keys()) {
      if (this.attempts.size <= MAX_TRACKED) break;
      this.attempts.delete(key);
    }
  }
}

function replay(outcome: Outcome): DevicePoll {
  if ('error' in outcome) throw outcome.error;
  return outcome.poll;
}

const said = (p: ProviderErrorInfo): string => providerErrorLabel(p);

/** A dead code during consent is a failed consent, not a dead stored grant. */
function asFailedConsent(err: unknown, connectionId: string): unknown {
  if (!isBrokerError(err, 'consent_required')) return err;
  return new BrokerError('consent_failed', `The sign-in could not be completed: ${err.message}`, {
    connectionId,
    providerError: err.providerError,
    failure: err.failure,
    cause: err,
  });
}

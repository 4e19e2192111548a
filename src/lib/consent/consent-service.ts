import { createHash } from 'node:crypto';
import type { Person } from '../auth/person-auth.js';
import { pkcePair } from '../crypto/pkce.js';
import { seal, unseal } from '../crypto/seal.js';
import { randomToken, safeEqual } from '../crypto/tokens.js';
import { BrokerError, isBrokerError, providerErrorLabel } from '../errors.js';
import { startPath } from '../links.js';
import { aadstsIn, oauthErrorCode } from '../oauth/index.js';
import { callbackFailure } from '../providers/callback-errors.js';
import { assertDelegated } from '../tokens/delegated-only.js';
import { type ConsentResult, claimInvitation, completeConsent } from './complete-consent.js';
import type {
  ConsentDeps,
  ConsentStartOptions,
  DevicePoll,
  DeviceService,
  DeviceStart,
} from './device-service.js';
import { type ConsentState, consentStateSchema, parseSealed } from './sealed-state.js';

/** A consent attempt lives 10 minutes, a little longer than Entra keeps its sign-in page. */
export const CONSENT_TTL_MS = 10 * 60 * 1000;
const PURPOSE = 'consent';

export interface ConsentCookie {
  name: string;
  value: string;
  maxAgeSeconds: number;
}

export interface CallbackParams {
  code?: string;
  state?: string;
  error?: string;
  errorDescription?: string;
}

export type { ConsentResult };

export type ConsentStart =
  | { flow: 'authorization_code'; location: string; cookie: ConsentCookie }
  | { flow: 'device_code'; device: DeviceStart };

/**
 * One cookie per attempt, named after its state, so consents for two connections in two tabs do not
 * overwrite each other. The name reveals nothing: it is a hash of the (public) state.
 */
export function consentCookieName(state: string): string {
  return `broker_consent_${createHash('sha256').update(state).digest('base64url').slice(0, 16)}`;
}

/**
 * Starts and finishes consent (docs/design.md, "Routes": `/api/start`, `/api/callback`, `/api/start/poll`): the
 * authorization code flow here, the device code flow delegated to `DeviceService`.
 */
export class ConsentService {
  /** The device code flow (RFC 8628): also used directly by `broker connect`. */
  readonly device: DeviceService;
  /**
   * States that reached the callback, until their expiry: a consent state is accepted once
   * (docs/design.md, "Hostile input"). Per instance: a replay that lands on another instance is not caught here
   * (the provider's single-use authorization code still refuses it there).
   */
  private readonly usedStates = new Map<string, number>();

  constructor(
    private readonly deps: ConsentDeps,
    /** Built beside this service by the composition root (src/lib/broker.ts). */
    device: DeviceService,
  ) {
    this.device = device;
  }

  /**
   * Begins consent. Authorization code (RFC 6749 §4.1.1 with PKCE, RFC 7636): the provider URL to
   * send the browser to and the sealed state cookie. Device code (RFC 8628): the user code to show
   * and the sealed poll state, from the `DeviceService`.
   */
  async start(connectionId: string, by?: Person, options: ConsentStartOptions = {}): Promise<ConsentStart> {
    const connection = await this.deps.catalog.get(connectionId);
    assertDelegated(connection);
    if ('flow' in connection && connection.flow === 'device_code') {
      return { flow: 'device_code', device: await this.device.start(connectionId, by, options) };
    }
    const state = randomToken();
    const nonce = randomToken();
    const { verifier, challenge } = pkcePair();
    const key = await this.deps.sealKey.get();
    const expiresAt = this.deps.clock.now() + CONSENT_TTL_MS;
    const payload: ConsentState = { connection: connection.id, state, nonce, verifier, expiresAt };
    if (by) payload.by = by;
    if (options.replace) payload.replace = true;
    if (options.invitation) payload.invitation = options.invitation;
    const location = await this.deps.dialect(connection).authorizeUrl({
      state,
      nonce,
      codeChallenge: challenge,
      redirectUri: connection.redirectUri,
    });
    this.deps.logger.info('consent.started', {
      connection: connection.id,
      by: by ? (by.name ?? by.id) : undefined,
    });
    return {
      flow: 'authorization_code',
      location,
      cookie: {
        name: consentCookieName(state),
        value: seal(key, PURPOSE, payload, expiresAt),
        maxAgeSeconds: CONSENT_TTL_MS / 1000,
      },
    };
  }

  /** One poll of a device-code consent (`/api/start/poll`); see `DeviceService.poll`. */
  pollDevice(
    connectionId: string,
    attempt: string,
    options: { invitationOnly?: boolean } = {},
  ): Promise<DevicePoll> {
    return this.device.poll(connectionId, attempt, options);
  }

  /** RFC 6749 §4.1.2–4.1.4: checks the state against its cookie, exchanges the code, stores the grant. */
  async callback(params: CallbackParams, cookies: Map<string, string>): Promise<ConsentResult> {
    const state = await this.verifyState(params.state, cookies);
    const connection = await this.deps.catalog.get(state.connection);
    if (params.error !== undefined) {
      // Shown to the person and logged: only an RFC 6749 error code, and at most a 9-digit AADSTS number.
      const error = oauthErrorCode(params.error);
      const aadsts = aadstsIn(params.errorDescription);
      const providerError = { error, aadsts };
      throw new BrokerError(
        'consent_failed',
        `The provider refused the sign-in (${providerErrorLabel(providerError)}). Start again from ${startPath(connection.id)}.`,
        {
          connectionId: connection.id,
          providerError,
          failure: callbackFailure(connection.provider, error, aadsts),
        },
      );
    }
    if (!params.code) throw new BrokerError('consent_failed', 'The callback carries no authorization code.');
    const dialect = this.deps.dialect(connection);
    const tokens = await dialect
      .exchangeCode({ code: params.code, codeVerifier: state.verifier, redirectUri: connection.redirectUri })
      .catch((err: unknown) => {
        // A dead code (expired, used twice) is a failed consent here, not a dead grant.
        if (isBrokerError(err, 'consent_required')) {
          throw new BrokerError('consent_failed', `The sign-in could not be completed: ${err.message}`, {
            connectionId: connection.id,
            providerError: err.providerError,
            failure: err.failure,
            cause: err,
          });
        }
        throw err;
      });
    const account = await dialect.accountOf(tokens, state.nonce);
    return completeConsent(
      this.deps,
      connection,
      tokens,
      account,
      state.by,
      state.replace === true,
      claimInvitation(this.deps.invitations, connection.id, state.invitation, account),
    );
  }

  /** Claims a verified state (before the code exchange, so two concurrent replays cannot both pass). */
  private useOnce(payload: ConsentState): void {
    const now = this.deps.clock.now();
    for (const [state, until] of this.usedStates) if (until <= now) this.usedStates.delete(state);
    if (this.usedStates.has(payload.state)) {
      throw new BrokerError(
        'consent_failed',
        `This sign-in was already completed; a consent state is accepted once. Start again from ${startPath(payload.connection)}.`,
        { connectionId: payload.connection },
      );
    }
    this.usedStates.set(payload.state, payload.expiresAt ?? now + CONSENT_TTL_MS);
  }

  private async verifyState(state: string | undefined, cookies: Map<string, string>): Promise<ConsentState> {
    const restart = 'Start the consent again from /api/start.';
    if (!state) throw new BrokerError('consent_failed', `The callback carries no state. ${restart}`);
    const sealed = cookies.get(consentCookieName(state));
    if (!sealed) {
      throw new BrokerError(
        'consent_failed',
        `This sign-in was not started from this browser, or took longer than 10 minutes. ${restart}`,
      );
    }
    const payload = parseSealed(
      consentStateSchema,
      unseal<unknown>(await this.deps.sealKey.get(), PURPOSE, sealed, this.deps.clock.now()),
    );
    if (!payload || !safeEqual(payload.state, state)) {
      throw new BrokerError('consent_failed', `The sign-in state is invalid or expired. ${restart}`);
    }
    this.useOnce(payload);
    return payload;
  }
}

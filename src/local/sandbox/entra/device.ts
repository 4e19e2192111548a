/**
 * Device authorization (RFC 8628) as Entra runs it: `/devicecode` hands out a device code and a
 * user code, a person answers at `/devicelogin`, and the device polls the token endpoint.
 */
import { randomBytes } from 'node:crypto';
import { EntraError } from './errors.js';
import type { Grant } from './grant.js';
import type { GrantStore } from './grants.js';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Entra's user codes: 9 letters and digits; this alphabet has no vowels (no words) and no 0/O, 1/I. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ23456789';
const USER_CODE_LENGTH = 9;
/** Device authorizations held at most (see `start`). */
export const MAX_DEVICE_CODES = 1000;

/** One device authorization: what the device code and the user code share. */
export interface DeviceRecord {
  clientId: string;
  tid: string;
  scopes: string[];
  userCode: string;
  expiresAt: number;
  /** Seconds; grows by 5 with every slow_down. */
  interval: number;
  lastPollAt?: number;
  state: 'pending' | 'approved' | 'declined' | 'redeemed';
  grant?: Grant;
}

export class DeviceAuthorizations {
  private readonly byDeviceCode = new Map<string, DeviceRecord>();
  /** Normalized user code -> the same records. */
  private readonly byUserCode = new Map<string, DeviceRecord>();

  constructor(
    private readonly grants: GrantStore,
    private readonly now: () => number,
    /** Of device codes issued from now on: `expires_in` and the polling interval, in seconds. */
    readonly timing: { lifetimeSec: number; intervalSec: number },
  ) {}

  start(clientId: string, tid: string, scopes: string[]): { deviceCode: string; userCode: string } {
    const deviceCode = `DAQABIQEAAAB${randomBytes(96).toString('base64url')}`;
    let userCode: string;
    do userCode = newUserCode();
    while (this.byUserCode.has(userCode));
    const record: DeviceRecord = {
      clientId,
      tid,
      scopes,
      userCode,
      expiresAt: this.now() + this.timing.lifetimeSec * 1000,
      interval: this.timing.intervalSec,
      state: 'pending',
    };
    this.byDeviceCode.set(deviceCode, record);
    this.byUserCode.set(userCode, record);
    // Anyone on the machine may ask for codes: the oldest go first beyond the bound, and any once
    // they have been expired as long as they lived (a late poll still hears expired_token first).
    const keepUntil = this.now() - this.timing.lifetimeSec * 1000;
    for (const [code, old] of this.byDeviceCode) {
      if (this.byDeviceCode.size <= MAX_DEVICE_CODES && old.expiresAt > keepUntil) break;
      this.byDeviceCode.delete(code);
      this.byUserCode.delete(old.userCode);
      if (old.grant) this.grants.forgetUnused(old.grant);
    }
    return { deviceCode, userCode };
  }

  /** How many device authorizations are held: for tests of the bound. */
  get size(): number {
    return this.byDeviceCode.size;
  }

  /** The device authorization a person may still answer with this user code. */
  awaitingPerson(userCode: string): DeviceRecord | undefined {
    const record = this.byUserCode.get(normalizeUserCode(userCode));
    return record?.state === 'pending' && this.now() < record.expiresAt ? record : undefined;
  }

  /** The person signed in as `account`: the device's next poll gets tokens. */
  approve(record: DeviceRecord, account: string): void {
    record.grant = this.grants.add({
      clientId: record.clientId,
      account,
      tid: record.tid,
      scopes: record.scopes,
    });
    record.state = 'approved';
  }

  /** The person declined: the device's next poll hears authorization_declined. */
  decline(record: DeviceRecord): void {
    record.state = 'declined';
  }

  /**
   * RFC 8628 §3.4–3.5 with Entra's errors: a redeemed or unknown code is bad_verification_code, then
   * expired_token (AADSTS70019), then slow_down for a poll sooner than the interval after the previous
   * one (the interval grows by 5 s), then authorization_pending (AADSTS70016) or authorization_declined,
   * else the grant, once.
   */
  poll(deviceCode: string, clientId: string): Grant {
    const record = this.byDeviceCode.get(deviceCode);
    if (!record || record.clientId !== clientId || record.state === 'redeemed') {
      const message =
        'Invalid verification code. The device_code sent to the token endpoint was not recognized.';
      throw new EntraError('bad_verification_code', 70018, message);
    }
    const now = this.now();
    if (now >= record.expiresAt) {
      throw new EntraError('expired_token', 70019, 'Verification code expired.');
    }
    const last = record.lastPollAt;
    record.lastPollAt = now;
    if (last !== undefined && now - last < record.interval * 1000) {
      record.interval += 5;
      const message = `The client is polling too quickly. Wait at least ${record.interval} seconds between requests.`;
      throw new EntraError('slow_down', 70016, message);
    }
    if (record.state === 'pending') {
      throw new EntraError(
        'authorization_pending',
        70016,
        'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
      );
    }
    if (record.state === 'declined') {
      // Entra documents the error, not its number; 65004 is what it uses for a declined consent.
      throw new EntraError('authorization_declined', 65004, 'The end user denied the authorization request.');
    }
    record.state = 'redeemed';
    return record.grant!;
  }
}

function newUserCode(): string {
  const bytes = randomBytes(USER_CODE_LENGTH);
  return [...bytes].map((b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]).join('');
}

/** People type codes in any case, with spaces or dashes. */
const normalizeUserCode = (code: string) => code.toUpperCase().replace(/[\s-]+/g, '');

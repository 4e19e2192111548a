/**
 * Consents and what redeems them: authorization codes (short-lived, once) and refresh tokens (kept
 * by hash, rotated on every use, the old ones still accepted as Entra does for a while). A grant
 * can die the ways an Entra grant dies; `checkAlive` answers each as Entra does.
 */
import { randomBytes } from 'node:crypto';
import { EntraError } from './errors.js';
import type { Grant, GrantState } from './grant.js';
import { GRAPH } from './scopes.js';
import {
  parseState,
  type RefreshTokenRecord,
  type SimulatorPersistence,
  serializeState,
  tokenHash,
} from './state-file.js';

export interface CodeRecord {
  grant: Grant;
  redirectUri: string;
  codeChallenge: string;
  nonce?: string;
  expiresAt: number;
  redeemed: boolean;
}

const CODE_LIFETIME_MS = 10 * 60_000;
const REFRESH_INACTIVITY_MS = 90 * 86_400_000;
/**
 * The sign-in page answers anyone on the machine: without a bound, posting it in a loop would grow
 * the codes (and the grants behind them) for as long as the sandbox runs. The oldest go first.
 */
export const MAX_CODES = 1000;
/**
 * Refresh tokens kept per grant, newest first: every refresh rotates one, so without a bound a
 * long-running sandbox (and its state file) would grow by one token per refresh, forever. Older
 * ones are then unknown, as Entra's tolerance of a rotated-out token ends too.
 */
export const TOKENS_PER_GRANT = 8;

export class GrantStore {
  private readonly grants: Set<Grant>;
  private readonly codes = new Map<string, CodeRecord>();
  /** By `tokenHash`. */
  private readonly refreshTokens: Map<string, RefreshTokenRecord>;
  /** Each grant's refresh token hashes, oldest first. */
  private readonly tokensOf = new Map<Grant, string[]>();

  constructor(
    private readonly now: () => number,
    private readonly persistence?: SimulatorPersistence,
  ) {
    const state = parseState(persistence?.load());
    this.grants = new Set(state.grants);
    this.refreshTokens = state.refreshTokens;
    for (const [hash, record] of this.refreshTokens) this.remember(record.grant, hash);
  }

  /** A new consent of `account`, alive from now. */
  add(consent: Pick<Grant, 'clientId' | 'account' | 'tid' | 'scopes'>): Grant {
    const grant: Grant = { ...consent, issuedAt: this.now(), state: 'active' };
    this.grants.add(grant);
    return grant;
  }

  /** How many of each are held: for tests of the bounds. */
  get sizes(): { grants: number; codes: number; refreshTokens: number } {
    return { grants: this.grants.size, codes: this.codes.size, refreshTokens: this.refreshTokens.size };
  }

  /**
   * Drops a grant that never got a refresh token (its code or device authorization is gone): nothing
   * can redeem it any more.
   */
  forgetUnused(grant: Grant): void {
    if (!this.tokensOf.has(grant)) this.grants.delete(grant);
  }

  /** Puts the existing grants of `account` (any case; or all) in `state`; a new sign-in is active again. */
  setState(state: GrantState, account?: string): void {
    for (const grant of this.grants) {
      if (account === undefined || grant.account.toLowerCase() === account.toLowerCase()) grant.state = state;
    }
  }

  issueCode(grant: Grant, request: Pick<CodeRecord, 'redirectUri' | 'codeChallenge' | 'nonce'>): string {
    const code = `1.A${randomBytes(48).toString('base64url')}`;
    const now = this.now();
    this.codes.set(code, { grant, ...request, expiresAt: now + CODE_LIFETIME_MS, redeemed: false });
    // Codes are kept past their expiry for a while (a late one is told "expired", 70008, not
    // "malformed"); in insertion order, so the oldest are at the front.
    for (const [old, record] of this.codes) {
      if (this.codes.size <= MAX_CODES && record.expiresAt + CODE_LIFETIME_MS > now) break;
      this.codes.delete(old);
      this.forgetUnused(record.grant);
    }
    return code;
  }

  findCode(code: string): CodeRecord | undefined {
    return this.codes.get(code);
  }

  issueRefreshToken(grant: Grant): string {
    const token = `1.A${randomBytes(96).toString('base64url')}`;
    const hash = tokenHash(token);
    this.refreshTokens.set(hash, { grant, issuedAt: this.now() });
    this.grants.add(grant);
    this.remember(grant, hash);
    this.persistence?.save(serializeState([...this.grants], this.refreshTokens));
    return token;
  }

  private remember(grant: Grant, hash: string): void {
    let hashes = this.tokensOf.get(grant);
    if (!hashes) {
      hashes = [];
      this.tokensOf.set(grant, hashes);
    }
    hashes.push(hash);
    while (hashes.length > TOKENS_PER_GRANT) this.refreshTokens.delete(hashes.shift()!);
  }

  findRefreshToken(token: string): RefreshTokenRecord | undefined {
    return this.refreshTokens.get(tokenHash(token));
  }

  /** Throws what Entra answers a refresh of a dead grant, or of a token idle for 90 days. */
  checkAlive(grant: Grant, tokenIssuedAt: number): void {
    const now = this.now();
    if (grant.state === 'revoked') {
      const message = `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${new Date(grant.issuedAt).toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(now).toISOString()}'.`;
      throw new EntraError('invalid_grant', 50173, message);
    }
    if (grant.state === 'inactive' || now - tokenIssuedAt > REFRESH_INACTIVITY_MS) {
      const issued = new Date(tokenIssuedAt).toISOString();
      const message = `The refresh token has expired due to inactivity. The token was issued on ${issued} and was inactive for 90.00:00:00.`;
      throw new EntraError('invalid_grant', 700082, message);
    }
    if (grant.state === 'mfa') {
      const message = `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${GRAPH}'.`;
      throw new EntraError('interaction_required', 50076, message);
    }
    if (grant.state === 'consent') {
      const message = `The user or administrator has not consented to use the application with ID '${grant.clientId}'. Send an interactive authorization request for this user and resource.`;
      throw new EntraError('invalid_grant', 65001, message, 400, 'consent_required');
    }
  }
}

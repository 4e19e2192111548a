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

export class GrantStore {
  private readonly grants: Grant[];
  private readonly codes = new Map<string, CodeRecord>();
  /** By `tokenHash`. */
  private readonly refreshTokens: Map<string, RefreshTokenRecord>;

  constructor(
    private readonly now: () => number,
    private readonly persistence?: SimulatorPersistence,
  ) {
    ({ grants: this.grants, refreshTokens: this.refreshTokens } = parseState(persistence?.load()));
  }

  /** A new consent of `account`, alive from now. */
  add(consent: Pick<Grant, 'clientId' | 'account' | 'tid' | 'scopes'>): Grant {
    const grant: Grant = { ...consent, issuedAt: this.now(), state: 'active' };
    this.grants.push(grant);
    return grant;
  }

  /** Puts the existing grants of `account` (any case; or all) in `state`; a new sign-in is active again. */
  setState(state: GrantState, account?: string): void {
    for (const grant of this.grants) {
      if (account === undefined || grant.account.toLowerCase() === account.toLowerCase()) grant.state = state;
    }
  }

  issueCode(grant: Grant, request: Pick<CodeRecord, 'redirectUri' | 'codeChallenge' | 'nonce'>): string {
    const code = `1.A${randomBytes(48).toString('base64url')}`;
    this.codes.set(code, { grant, ...request, expiresAt: this.now() + CODE_LIFETIME_MS, redeemed: false });
    return code;
  }

  findCode(code: string): CodeRecord | undefined {
    return this.codes.get(code);
  }

  issueRefreshToken(grant: Grant): string {
    const token = `1.A${randomBytes(96).toString('base64url')}`;
    this.refreshTokens.set(tokenHash(token), { grant, issuedAt: this.now() });
    this.persistence?.save(serializeState(this.grants, this.refreshTokens));
    return token;
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

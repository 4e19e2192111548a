/** What the simulator's grant store and its state file share. */

/** Alive, or the way it died: revoked (password reset), idle 90 days, MFA or consent now required. */
export type GrantState = 'active' | 'revoked' | 'inactive' | 'mfa' | 'consent';

/** One consent: what a code and every refresh token descending from it share. */
export interface Grant {
  clientId: string;
  account: string;
  tid: string;
  scopes: string[];
  issuedAt: number;
  state: GrantState;
}

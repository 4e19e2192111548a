import type { Connection } from '../config/connections.js';
import { DAY_MS } from '../config/duration.js';
import type { GrantTags } from '../tokens/grant-store.js';

/**
 * The slow failures the broker exists to prevent, forecast per connection (docs/design.md, "Token vending
 * and rotation"): an Entra refresh token unused for 90 days, a provider's fixed lifetime (ACS: consent
 * + 6 months), and the client secret's (or certificate's) own expiry.
 */
export type DeadlineKind =
  | 'refresh_token_inactivity'
  | 'hard_expiry'
  | 'client_secret_expiry'
  | 'client_certificate_expiry';

export interface Deadline {
  kind: DeadlineKind;
  /** ISO-8601. */
  at: string;
}

/** Entra revokes a refresh token that has not been used for 90 days (AADSTS700082). */
export const ENTRA_INACTIVITY_MS = 90 * DAY_MS;

export function forecastDeadlines(
  connection: Connection,
  tags: GrantTags | undefined,
  clientSecretExpiresOn: Date | undefined,
): Deadline[] {
  const deadlines: Deadline[] = [];
  if (tags && tags.status === 'connected') {
    const lastUse = Date.parse(tags.refreshedAt ?? tags.consentedAt ?? '');
    if (connection.provider === 'entra' && Number.isFinite(lastUse)) {
      deadlines.push({
        kind: 'refresh_token_inactivity',
        at: new Date(lastUse + ENTRA_INACTIVITY_MS).toISOString(),
      });
    }
    if (tags.hardExpiresAt) deadlines.push({ kind: 'hard_expiry', at: tags.hardExpiresAt });
  }
  if (clientSecretExpiresOn) {
    const kind =
      connection.credential?.type === 'certificate' ? 'client_certificate_expiry' : 'client_secret_expiry';
    deadlines.push({ kind, at: clientSecretExpiresOn.toISOString() });
  }
  return deadlines.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

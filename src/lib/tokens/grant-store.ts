import { BrokerError } from '../errors.js';
import { refreshTokenSecretName, type SecretProperties, type SecretStore } from '../store/secret-store.js';

/** Connection states of DESIGN.md; `not_connected` is the absence of a stored grant. */
export type GrantStatus = 'connected' | 'needs_consent';

/** Non-secret metadata kept in the `rt-{id}` secret's tags (DESIGN.md, "Stored data"). */
export interface GrantTags {
  account?: string;
  tenant?: string;
  scopes?: string;
  consentedAt?: string;
  refreshedAt?: string;
  status: GrantStatus;
  lastError?: string;
  hardExpiresAt?: string;
}

export interface StoredGrant {
  refreshToken: string;
  version: string;
  tags: GrantTags;
}

/** Key Vault caps tag values at 256 characters; a long scope list is cut at a word boundary. */
const TAG_VALUE_MAX = 256;

function fitTag(value: string): string {
  if (value.length <= TAG_VALUE_MAX) return value;
  const cut = value.slice(0, TAG_VALUE_MAX - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > 0 ? cut.slice(0, space) : cut}…`;
}

function toTags(tags: GrantTags): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (typeof v === 'string' && v !== '') out[k] = fitTag(v);
  return out;
}

export function fromTags(tags: Record<string, string>): GrantTags {
  return {
    account: tags.account || undefined,
    tenant: tags.tenant || undefined,
    scopes: tags.scopes || undefined,
    consentedAt: tags.consentedAt || undefined,
    refreshedAt: tags.refreshedAt || undefined,
    status: tags.status === 'needs_consent' ? 'needs_consent' : 'connected',
    lastError: tags.lastError || undefined,
    hardExpiresAt: tags.hardExpiresAt || undefined,
  };
}

/**
 * The refresh tokens of all connections, one `rt-{id}` secret each, whose value is the refresh token
 * alone. Every new refresh token is a new version, so the store's history is the audit trail.
 */
export class GrantStore {
  constructor(private readonly store: SecretStore) {}

  async read(connectionId: string): Promise<StoredGrant | undefined> {
    const secret = await this.store.getSecret(refreshTokenSecretName(connectionId));
    if (!secret) return undefined;
    return { refreshToken: secret.value, version: secret.version, tags: fromTags(secret.tags) };
  }

  async save(connectionId: string, refreshToken: string, tags: GrantTags): Promise<StoredGrant> {
    if (!refreshToken)
      throw new BrokerError('upstream_unavailable', 'Refusing to store an empty refresh token.');
    const props = await this.store.setSecret(refreshTokenSecretName(connectionId), refreshToken, {
      tags: toTags(tags),
    });
    return { refreshToken, version: props.version, tags };
  }

  /** Changes tags only (no new version of the value), e.g. to mark a dead grant. */
  async updateTags(grant: StoredGrant, connectionId: string, tags: GrantTags): Promise<void> {
    await this.store.updateSecretProperties(refreshTokenSecretName(connectionId), grant.version, {
      tags: toTags(tags),
    });
  }

  /** Tags of every stored grant by connection id, from one list call (no values read). */
  async listTags(): Promise<Map<string, GrantTags & { updatedOn: Date }>> {
    const out = new Map<string, GrantTags & { updatedOn: Date }>();
    const all: SecretProperties[] = await this.store.listSecrets();
    for (const p of all) {
      if (!p.name.startsWith('rt-') || !p.enabled) continue;
      out.set(p.name.slice(3), { ...fromTags(p.tags), updatedOn: p.updatedOn });
    }
    return out;
  }
}

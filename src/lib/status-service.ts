import type { Connection } from './config/connections.js';
import type { GrantStore } from './tokens/grant-store.js';

export type ConnectionStatus = 'connected' | 'needs_consent' | 'not_connected';

export interface ConnectionHealth {
  id: string;
  provider: Connection['provider'];
  flow: string;
  status: ConnectionStatus;
  account: string | null;
  consentedAt: string | null;
  refreshedAt: string | null;
  lastError: string | null;
  hardExpiresAt?: string;
}

/** Every connection's health (DESIGN.md, `GET /api/status`), from one list call on the store. */
export class StatusService {
  constructor(private readonly deps: { connections: Map<string, Connection>; grantStore: GrantStore }) {}

  async health(): Promise<ConnectionHealth[]> {
    const stored = await this.deps.grantStore.listTags();
    return [...this.deps.connections.values()].map((c) => {
      const tags = stored.get(c.id);
      const health: ConnectionHealth = {
        id: c.id,
        provider: c.provider,
        flow: 'flow' in c ? c.flow : 'authorization_code',
        status: tags ? tags.status : 'not_connected',
        account: tags?.account ?? null,
        consentedAt: tags?.consentedAt ?? null,
        refreshedAt: tags?.refreshedAt ?? null,
        lastError: tags?.lastError ?? null,
      };
      if (tags?.hardExpiresAt) health.hardExpiresAt = tags.hardExpiresAt;
      return health;
    });
  }
}

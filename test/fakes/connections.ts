import {
  type Connection,
  type EntraConnectionConfig,
  entraConnection,
} from '../../src/lib/config/connections.js';

const DAY_MS = 86_400_000;

/** An Entra connection as `loadConnections` would resolve it, with `overrides` on top. */
export function testConnection(
  id: string,
  overrides: Partial<EntraConnectionConfig> & { rotateAfterMs?: number } = {},
): Connection {
  const { rotateAfterMs, ...config } = overrides;
  return {
    ...entraConnection.parse({
      provider: 'entra',
      tenant: 'organizations',
      clientId: '00000000-0000-4000-8000-000000000001',
      credential: { type: 'secret', secretName: 'app-secret' },
      scopes: ['https://graph.microsoft.com/Mail.Read'],
      ...config,
    }),
    id,
    redirectUri: 'https://broker.example.com/api/callback',
    rotateAfterMs: rotateAfterMs ?? DAY_MS,
  };
}

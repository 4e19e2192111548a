import {
  type Connection,
  type ConnectionConfig,
  type EntraConnectionConfig,
  entraConnection,
  sharepointAcsConnection,
} from '../../src/lib/config/connections.js';

const DAY_MS = 86_400_000;

/** A parsed connection config as `loadConnections` resolves it: id, redirect URI, rotateAfter in ms. */
function resolved(id: string, config: ConnectionConfig, rotateAfterMs = DAY_MS): Connection {
  return { ...config, id, redirectUri: 'https://broker.example.com/api/callback', rotateAfterMs };
}

/** An Entra connection (confidential client, Graph Mail.Read), with `overrides` on top. */
export function testConnection(
  id: string,
  overrides: Partial<EntraConnectionConfig> & { rotateAfterMs?: number } = {},
): Connection {
  const { rotateAfterMs, ...config } = overrides;
  const parsed = entraConnection.parse({
    provider: 'entra',
    tenant: 'organizations',
    clientId: '00000000-0000-4000-8000-000000000001',
    credential: { type: 'secret', secretName: 'app-secret' },
    scopes: ['https://graph.microsoft.com/Mail.Read'],
    // Other resources the unit tests mint tokens for (DESIGN.md, `allowedScopes`).
    allowedScopes: [
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'https://example.com/other',
      'a',
      'b',
    ],
    ...config,
  });
  return resolved(id, parsed, rotateAfterMs);
}

/** A SharePoint add-in (ACS) connection whose client secret is `sp-secret`. */
export function acsTestConnection(id: string): Connection {
  const parsed = sharepointAcsConnection.parse({
    provider: 'sharepoint-acs',
    siteUrl: 'https://city.example.org/sites/intranet',
    clientId: 'a1b2c3d4-0000-4000-8000-000000000001',
    credential: { type: 'secret', secretName: 'sp-secret' },
    scopes: ['AllSites.Manage'],
  });
  return resolved(id, parsed);
}

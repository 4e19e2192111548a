/**
 * panva's `oidc-provider` (a certified OpenID Provider) on 127.0.0.1 for the `oauth2` dialect's
 * tests, configured as the strictest common production setup: refresh tokens rotate on every use
 * and a rotated one presented again revokes the whole grant (reuse detection, built in), PKCE is
 * required of every client, the device flow (RFC 8628) is on, and its development login and
 * consent pages stand in for a person. Its own clock is the real one.
 *
 * Everything it does is counted from its events, so a test can assert that reuse was never detected.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider';

export interface OidcClient {
  clientId: string;
  clientSecret?: string;
  redirectUris: string[];
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** Public keys (JWK) of a `private_key_jwt` client. */
  jwks?: object[];
}

export interface OidcProviderOptions {
  clients: OidcClient[];
  /** Serve on this port (the broker's connection names the issuer before the provider starts). */
  port?: number;
  /** Access token lifetime, seconds (default 3600). */
  accessTokenTtl?: number;
  /** Scopes besides the OpenID ones. */
  scopes?: string[];
}

export interface OidcStats {
  /** Successful token responses by grant type. */
  grants: Record<string, number>;
  /** Token endpoint errors: `error` and the provider's detail (e.g. `invalid_grant: refresh token already used`). */
  errors: string[];
  /** Grants revoked by the provider: reuse detection revokes one. */
  revokedGrants: number;
  /** Refresh tokens presented again after their rotation (reuse detected). */
  reuseDetected: number;
  /** Every refresh token it rotated away, in order. */
  rotated: number;
  /** Errors inside the provider (should stay empty). */
  serverErrors: string[];
}

export interface OidcFake {
  issuer: string;
  provider: Provider;
  stats: OidcStats;
  close(): Promise<void>;
}

function toMetadata(client: OidcClient): ClientMetadata {
  const metadata: ClientMetadata = {
    client_id: client.clientId,
    redirect_uris: client.redirectUris,
    grant_types: [
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code',
      'client_credentials',
    ],
    response_types: ['code'],
    token_endpoint_auth_method:
      client.tokenEndpointAuthMethod ?? (client.clientSecret ? 'client_secret_basic' : 'none'),
  };
  if (client.clientSecret) metadata.client_secret = client.clientSecret;
  if (client.jwks) metadata.jwks = { keys: client.jwks } as ClientMetadata['jwks'];
  return metadata;
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<OidcFake> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: options.clients.map(toMetadata),
    scopes: ['openid', 'offline_access', 'email', 'profile', ...(options.scopes ?? [])],
    claims: { email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, email: sub, email_verified: true, preferred_username: sub, name: sub.split('@')[0] };
        },
      };
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      // RFC 6749 §4.4, for app-only connections: opaque tokens, the scope checked against `scopes`.
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      DeviceCode: 600,
      IdToken: 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
    cookies: { keys: ['oidc-fake-cookie-key-0123456789abcdef'] },
  });
  const stats: OidcStats = {
    grants: {},
    errors: [],
    revokedGrants: 0,
    reuseDetected: 0,
    rotated: 0,
    serverErrors: [],
  };
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const type = String(ctx.oidc.params?.grant_type ?? 'unknown');
    stats.grants[type] = (stats.grants[type] ?? 0) + 1;
  });
  provider.on('grant.error', (_ctx: KoaContextWithOIDC, err: { error?: string; error_detail?: string }) => {
    stats.errors.push(`${err.error}: ${err.error_detail}`);
    if (err.error_detail === 'refresh token already used') stats.reuseDetected++;
  });
  provider.on('grant.revoked', () => {
    stats.revokedGrants++;
  });
  provider.on('refresh_token.consumed', () => {
    stats.rotated++;
  });
  provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => {
    stats.serverErrors.push(err.message);
  });
  server.on('request', provider.callback());
  return {
    issuer,
    provider,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

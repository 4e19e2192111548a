import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { type OidcFake, startOidcProvider } from '../fakes/oidc-provider.js';
import { testCertificate } from '../fakes/tls.js';
import { freePort } from '../support/net.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const API = 'https://api.example.com/.default';

/**
 * App-only connections on the generic `oauth2` dialect against a certified OpenID Provider
 * (panva's oidc-provider with its client credentials grant on): a client secret
 * (client_secret_basic) and a certificate (private_key_jwt), no refresh token anywhere.
 */
describe('app-only oauth2 connections against oidc-provider', () => {
  let op: OidcFake;
  let stack: Stack;
  const cert = testCertificate({ cn: 'oauth2 app-only client' });
  const seen: string[] = [];

  const health = async (id: string) => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === id)!;
  };

  beforeAll(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    stack = await startStack({
      connections: {
        'api-secret': { provider: 'oauth2', flow: 'client_credentials', issuer, scopes: [API] },
        'api-cert': {
          provider: 'oauth2',
          flow: 'client_credentials',
          issuer,
          clientId: 'app-cert-client',
          credential: { type: 'certificate', secretName: 'app-cert' },
          scopes: [API],
        },
        'api-refused': {
          provider: 'oauth2',
          flow: 'client_credentials',
          issuer,
          credential: { type: 'secret', secretName: 'stale-secret' },
          scopes: [API],
        },
      },
    });
    await stack.local.broker.store.setSecret('app-cert', cert.bundle);
    // A secret the provider no longer accepts (rotated at the provider, not in the store).
    await stack.local.broker.store.setSecret('stale-secret', 'a-secret-the-provider-forgot');
    const { CLIENT_ID } = await import('./harness.js');
    op = await startOidcProvider({
      port,
      scopes: [API],
      clients: [
        {
          clientId: CLIENT_ID,
          clientSecret: stack.clientSecret,
          redirectUris: [`${stack.url}/api/callback`],
        },
        {
          clientId: 'app-cert-client',
          redirectUris: [`${stack.url}/api/callback`],
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: [
            {
              ...new X509Certificate(cert.cert).publicKey.export({ format: 'jwk' }),
              alg: 'RS256',
              use: 'sig',
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await stack?.close();
    await op?.close();
  });

  it.each(['api-secret', 'api-cert'])(
    '%s: a client credentials token the provider knows, cached, no rt-',
    async (id) => {
      expect((await health(id)).status).toBe('not_connected');
      const res = await stack.api(`/api/token?connection=${id}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { access_token: string; scope: string };
      seen.push(body.access_token);
      const stored = await op.provider.ClientCredentials.find(body.access_token);
      expect(stored?.scope).toBe(API);
      const before = op.stats.grants.client_credentials ?? 0;
      expect((await stack.api(`/api/token?connection=${id}`)).status).toBe(200);
      expect(op.stats.grants.client_credentials).toBe(before);
      expect((await health(id)).status).toBe('connected');
      const names = (await stack.local.broker.store.listSecrets()).map((p) => p.name);
      expect(names.filter((n) => n.startsWith('rt-'))).toEqual([]);
    },
  );

  it('a stale client secret: client_misconfigured, new_client_secret, recorded on the status', async () => {
    const res = await stack.api('/api/token?connection=api-refused');
    expect(res.status).toBe(502);
    const problem = (await res.json()) as { code: string; remedy: { kind: string } };
    expect(problem.code).toBe('client_misconfigured');
    expect(problem.remedy.kind).toBe('new_client_secret');
    const h = await health('api-refused');
    expect(h).toMatchObject({ status: 'not_connected', lastError: 'invalid_client' });
    expect(h.remedy?.kind).toBe('new_client_secret');
    expect(h.remedy?.text).toContain('broker secrets set stale-secret');
  });

  it('leaks nothing', async () => {
    expect(op.stats.serverErrors).toEqual([]);
    expect(await findLeaks(stack, seen)).toEqual([]);
  });
});

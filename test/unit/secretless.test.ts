import { X509Certificate } from 'node:crypto';
import { decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { ManualClock } from '../../src/lib/clock.js';
import { parseConnections } from '../../src/lib/config/load.js';
import { BrokerError } from '../../src/lib/errors.js';
import {
  CertificateBundleError,
  parseCertificateBundle,
  signClientAssertion,
} from '../../src/lib/providers/certificate.js';
import { classifyEntraError } from '../../src/lib/providers/entra-errors.js';
import { ManagedIdentityTokens, tokenExchangeAudience } from '../../src/lib/providers/managed-identity.js';
import { MemorySecretStore } from '../fakes/memory-store.js';
import { testCertificate } from '../fakes/tls.js';

const settings = { publicUrl: 'https://broker.example.com' };
const parse = (connections: unknown) =>
  parseConnections(JSON.stringify({ connections }), 'connections.json', settings);
const entra = { provider: 'entra', clientId: 'abc', scopes: ['User.Read'] };
const T0 = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;

describe('credential configuration', () => {
  it('accepts the three credential types on entra', () => {
    for (const credential of [
      { type: 'secret', secretName: 'app-secret' },
      { type: 'managedIdentity' },
      { type: 'managedIdentity', clientId: '6731de76-14a6-49ae-97bc-6eba6914391e' },
      { type: 'certificate', secretName: 'app-cert' },
    ]) {
      expect(parse({ c: { ...entra, tenant: 'organizations', credential } }).get('c')?.credential).toEqual(
        credential,
      );
    }
  });

  it('refuses secret names reserved for the broker (rt-, broker-), whatever their case', () => {
    for (const secretName of ['rt-support', 'broker-seal-key', 'RT-x', 'Broker-check']) {
      for (const type of ['secret', 'certificate']) {
        expect(() => parse({ c: { ...entra, credential: { type, secretName } } })).toThrow(
          /reserved for the broker/,
        );
      }
    }
    expect(() =>
      parse({ c: { ...entra, credential: { type: 'secret', secretName: 'rtx-support' } } }),
    ).not.toThrow();
  });

  it('refuses managedIdentity for tenant consumers, saying why and what to use instead', () => {
    expect(() =>
      parse({ c: { ...entra, tenant: 'consumers', credential: { type: 'managedIdentity' } } }),
    ).toThrow(/connection "c": field "credential": .*personal Microsoft accounts.*certificate or a secret/);
  });

  it('keeps managedIdentity to entra, and private_key_jwt to certificates', () => {
    const oauth2 = { provider: 'oauth2', issuer: 'https://id.example.com', clientId: 'x', scopes: ['a'] };
    expect(() => parse({ c: { ...oauth2, credential: { type: 'managedIdentity' } } })).toThrow(
      /entra connections only/,
    );
    expect(() =>
      parse({
        c: {
          ...oauth2,
          tokenEndpointAuthMethod: 'private_key_jwt',
          credential: { type: 'secret', secretName: 's' },
        },
      }),
    ).toThrow(/private_key_jwt goes with a certificate/);
    expect(() =>
      parse({
        c: {
          ...oauth2,
          tokenEndpointAuthMethod: 'private_key_jwt',
          credential: { type: 'certificate', secretName: 's' },
        },
      }),
    ).not.toThrow();
    expect(() =>
      parse({
        c: {
          provider: 'sharepoint-acs',
          siteUrl: 'https://contoso.sharepoint.com',
          clientId: 'x',
          scopes: ['a'],
          credential: { type: 'certificate', secretName: 's' },
        },
      }),
    ).toThrow();
  });
});

describe('certificate bundles', () => {
  const cert = testCertificate({ cn: 'unit test client' });

  it('parses key and certificate, with the thumbprints Entra and JOSE use', () => {
    const bundle = parseCertificateBundle(cert.bundle);
    const x509 = new X509Certificate(cert.cert);
    expect(bundle.thumbprint).toBe(x509.fingerprint.replace(/:/g, ''));
    expect(bundle.thumbprint).toMatch(/^[0-9A-F]{40}$/);
    expect(bundle.subject).toContain('CN=unit test client');
    expect(bundle.notAfter.toISOString()).toBe(new Date(x509.validTo).toISOString());
    // Certificate first, then key (another order Key Vault may serve) parses the same.
    expect(parseCertificateBundle(`${cert.cert}${cert.key}`).thumbprint).toBe(bundle.thumbprint);
  });

  it('says what is wrong with a bundle, never what is in it', () => {
    const other = testCertificate();
    const cases: Array<[string, RegExp]> = [
      [cert.cert, /no PEM private key/],
      [cert.key, /no PEM certificate/],
      [`${other.key}${cert.cert}`, /matches none of its certificates/],
      ['not a pem at all', /no PEM private key/],
      [`-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n${cert.cert}`, /does not parse/],
    ];
    for (const [pem, message] of cases) {
      let error: unknown;
      try {
        parseCertificateBundle(pem);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(CertificateBundleError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('MII');
    }
  });

  it('signs an RS256 assertion: x5t#S256, iss = sub = client id, aud, unique jti, at most 10 minutes', async () => {
    const bundle = parseCertificateBundle(cert.bundle);
    const claims = {
      clientId: 'client-1',
      audience: 'https://login.example/t/oauth2/v2.0/token',
      nowMs: Date.now(),
    };
    const first = await signClientAssertion(bundle, claims);
    const second = await signClientAssertion(bundle, claims);
    const { payload } = await jwtVerify(first, await importX509(cert.cert, 'RS256'), {
      issuer: 'client-1',
      subject: 'client-1',
      audience: claims.audience,
    });
    expect(decodeProtectedHeader(first)).toMatchObject({ alg: 'RS256', 'x5t#S256': bundle.x5tS256 });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);
    expect(payload.nbf).toBe(payload.iat);
    const { payload: again } = await jwtVerify(second, await importX509(cert.cert, 'RS256'));
    expect(again.jti).not.toBe(payload.jti);
  });
});

describe('managed identity tokens', () => {
  const fakeCredential = (clock: ManualClock, lifetimeMs: number) => {
    const calls: string[] = [];
    return {
      calls,
      factory: () => ({
        async getToken(scopes: string | string[]) {
          calls.push(String(scopes));
          return { token: `mi-${calls.length}`, expiresOnTimestamp: clock.now() + lifetimeMs };
        },
      }),
    };
  };

  it('asks for the exchange audience of the authority’s cloud', () => {
    expect(tokenExchangeAudience('https://login.microsoftonline.com')).toBe('api://AzureADTokenExchange');
    expect(tokenExchangeAudience('https://login.microsoftonline.us')).toBe('api://AzureADTokenExchangeUSGov');
    expect(tokenExchangeAudience('https://login.chinacloudapi.cn')).toBe('api://AzureADTokenExchangeChina');
  });

  it('reuses a token while more than 5 minutes are left, then gets a new one', async () => {
    const clock = new ManualClock(T0);
    const fake = fakeCredential(clock, 60 * MIN);
    const tokens = new ManagedIdentityTokens({ factory: fake.factory, clock });
    expect(await tokens.token(undefined, 'api://AzureADTokenExchange')).toBe('mi-1');
    expect(fake.calls).toEqual(['api://AzureADTokenExchange/.default']);
    clock.advance(54 * MIN);
    expect(await tokens.token(undefined, 'api://AzureADTokenExchange')).toBe('mi-1');
    clock.advance(2 * MIN); // 4 minutes left: renewed
    expect(await tokens.token(undefined, 'api://AzureADTokenExchange')).toBe('mi-2');
  });

  it('never hands out a token that is expired or about to be', async () => {
    const clock = new ManualClock(T0);
    const tokens = new ManagedIdentityTokens({
      clock,
      factory: () => ({
        getToken: async () => ({ token: 'stale', expiresOnTimestamp: clock.now() + 10_000 }),
      }),
    });
    await expect(tokens.token(undefined, 'api://AzureADTokenExchange')).rejects.toMatchObject({
      code: 'upstream_unavailable',
    });
  });

  it('answers upstream_unavailable with Retry-After when the endpoint fails or hangs, without its message', async () => {
    const clock = new ManualClock(T0);
    const failing = new ManagedIdentityTokens({
      clock,
      factory: () => ({
        getToken: async () => {
          throw new Error('secret-looking detail');
        },
      }),
    });
    const err = (await failing
      .token('id', 'api://AzureADTokenExchange', 'conn')
      .catch((e) => e)) as BrokerError;
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toMatchObject({ code: 'upstream_unavailable', retryAfter: 5, connectionId: 'conn' });
    expect(err.message).not.toContain('secret-looking');
    const hanging = new ManagedIdentityTokens({
      clock,
      timeoutMs: 50,
      factory: () => ({ getToken: () => new Promise<never>(() => {}) }),
    });
    await expect(hanging.token(undefined, 'api://AzureADTokenExchange')).rejects.toThrow(/within 50 ms/);
  });
});

describe('assertion errors from Entra', () => {
  const failure = (aadsts: number) => ({
    status: 401,
    oauthError: { error: 'invalid_client', aadsts },
  });

  it('treats AADSTS70021 as propagation (transient) for a managed identity, as a client error otherwise', () => {
    expect(classifyEntraError(failure(70021), { credentialType: 'managedIdentity' }).code).toBe(
      'upstream_unavailable',
    );
    expect(classifyEntraError(failure(70021), { credentialType: 'certificate' }).code).toBe(
      'client_misconfigured',
    );
  });

  it('names the fix for a refused assertion, and no secret command for one', () => {
    const err = classifyEntraError(failure(700213), { credentialType: 'managedIdentity', connectionId: 'c' });
    expect(err.code).toBe('client_misconfigured');
    expect(err.message).toMatch(/object id/);
    expect(err.message).not.toMatch(/broker secrets set/);
    expect(classifyEntraError(failure(700027), { credentialType: 'certificate' }).message).toMatch(
      /upload the certificate/,
    );
  });
});

describe('broker check of secretless credentials', () => {
  const soon = testCertificate({ days: 10 });
  const check = async (credential: Record<string, unknown>, factoryFails = false) => {
    const store = new MemorySecretStore();
    await store.setSecret('soon-cert', soon.bundle);
    const lines: string[] = [];
    const code = await runCheck({
      env: {
        BROKER_DATA_DIR: '/nonexistent',
        BROKER_CONNECTIONS: JSON.stringify({
          connections: { c: { ...entra, tenant: 'organizations', credential } },
        }),
      },
      out: (l) => lines.push(l),
      openStore: async () => store,
      managedIdentityCredential: () => ({
        getToken: async () => {
          if (factoryFails) throw new Error('unreachable');
          return { token: 't', expiresOnTimestamp: Date.now() + 3600_000 };
        },
      }),
    });
    return { code, text: lines.join('\n') };
  };

  it('warns of a certificate that expires within 14 days', async () => {
    const { code, text } = await check({ type: 'certificate', secretName: 'soon-cert' });
    expect(text).toMatch(
      /warn {2}connection c: certificate soon-cert expires on \d{4}-\d\d-\d\d \(in (10|11) days\)/,
    );
    expect(code).toBe(0);
  });

  it('fails a managed identity that cannot get a token, and passes one that can', async () => {
    const bad = await check(
      { type: 'managedIdentity', clientId: '6731de76-14a6-49ae-97bc-6eba6914391e' },
      true,
    );
    expect(bad.text).toMatch(
      /FAIL {2}connection c: managed identity 6731de76-.* cannot get a token for api:\/\/AzureADTokenExchange: /,
    );
    expect(bad.code).toBe(1);
    const good = await check({ type: 'managedIdentity' });
    expect(good.text).toContain(
      'ok    connection c: managed identity AZURE_CLIENT_ID can get a token for api://AzureADTokenExchange now',
    );
  });
});

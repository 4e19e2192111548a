import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import { runLocal } from '../../src/local/run.js';
import { consent } from '../fakes/consent-client.js';
import {
  type ManagedIdentityFake,
  startManagedIdentitySimulator,
  useManagedIdentityEnv,
} from '../fakes/managed-identity.js';
import { type TestCertificate, testCertificate } from '../fakes/tls.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const MI_APP = '1b2a5c1e-8f7d-4d51-9d0e-2c6a3c0c7a11';
const CERT_APP = '7d0c2b3a-5e4f-4a8b-9c1d-0e2f3a4b5c6d';
const WRONG_SUBJECT_APP = '9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a';
/** Three user-assigned identities: the SDK caches per identity, so each scenario has its own. */
const IDENTITIES: Record<string, string> = {
  'a0000000-0000-4000-8000-00000000000a': 'a1111111-1111-4111-8111-11111111111a',
  'b0000000-0000-4000-8000-00000000000b': 'b1111111-1111-4111-8111-11111111111b',
  'c0000000-0000-4000-8000-00000000000c': 'c1111111-1111-4111-8111-11111111111c',
};
const [MI_A, MI_B, MI_C] = Object.keys(IDENTITIES) as [string, string, string];
const EXCHANGE = 'api://AzureADTokenExchange';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const OTHER_SCOPE = 'https://a.example.com/x';

/**
 * Issue 15: an app's credential without a client secret. The broker's real `ManagedIdentityCredential`
 * (the SDK) against the App Service managed identity endpoint simulator, and certificates signing
 * `private_key_jwt` assertions, both verified by the Entra simulator (signature, audience, expiry, jti).
 */
describe('secretless credentials: managed identity and certificate', () => {
  let stack: Stack;
  let mi: ManagedIdentityFake;
  let restoreEnv: () => void;
  let cert: TestCertificate;
  let mismatched: string;

  const formsOf = (clientId: string) => stack.sim.tokenRequests.filter((r) => r.form.client_id === clientId);
  const token = (id: string, scope?: string) =>
    stack.api(`/api/token?connection=${id}${scope ? `&scope=${encodeURIComponent(scope)}` : ''}`);
  const health = async (id: string) => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === id)!;
  };
  const issuedBy = (clientId: string) => mi.requests.filter((r) => r.client_id === clientId).length;
  /** consent → token → refresh (another scope) → a rotation pass, all through the broker's HTTP surface. */
  const lifecycle = async (id: string, advanceMs: number) => {
    expect((await consent(stack.url, stack.local.functionKey, id)).status).toBe(200);
    expect((await token(id)).status).toBe(200);
    expect((await token(id, OTHER_SCOPE)).status).toBe(200);
    stack.clock.advance(advanceMs);
    const results = await stack.local.broker.rotation.rotationPass();
    expect(results.find((r) => r.connection === id)).toMatchObject({ outcome: 'rotated' });
  };
  /** The token requests of `clientId` that carried an assertion: at least 3, none with a secret. */
  const assertionForms = (clientId: string) => {
    const forms = formsOf(clientId).filter((f) => f.form.client_assertion);
    expect(forms.length).toBeGreaterThanOrEqual(3);
    expect(formsOf(clientId).every((f) => f.form.client_secret === undefined && !f.basicAuth)).toBe(true);
    for (const { form } of forms) expect(form.client_assertion_type).toBe(JWT_BEARER);
    return forms.map((f) => f.form);
  };

  beforeAll(async () => {
    const startedAt = Date.now();
    let now = () => startedAt;
    mi = await startManagedIdentitySimulator({ now: () => now(), identities: IDENTITIES });
    restoreEnv = useManagedIdentityEnv(mi);
    cert = testCertificate({ cn: 'broker secretless test' });
    mismatched = `${testCertificate().key}${cert.cert}`;
    const mis = (clientId: string) => ({ credential: { type: 'managedIdentity', clientId } });
    stack = await startStack({
      connections: {
        // Rotated after a minute: the test moves the clock a little, so the SDK's cached token stays good.
        'mi-a': { clientId: MI_APP, rotateAfter: 'PT1M', ...mis(MI_A) },
        'mi-b': { clientId: MI_APP, ...mis(MI_B) },
        'mi-c': { clientId: MI_APP, ...mis(MI_C) },
        cert: { clientId: CERT_APP, credential: { type: 'certificate', secretName: 'cert-bundle' } },
        'cert-bad': { clientId: CERT_APP, credential: { type: 'certificate', secretName: 'bad-bundle' } },
        'secret-to-cert-app': { clientId: CERT_APP },
        // The secret-only app of the harness, and an app whose federated credential names another subject.
        'mi-to-secret-app': mis(MI_A),
        'cert-to-secret-app': { credential: { type: 'certificate', secretName: 'cert-bundle' } },
        'mi-wrong-subject': { clientId: WRONG_SUBJECT_APP, ...mis(MI_A) },
        'mi-device': { clientId: MI_APP, flow: 'device_code', ...mis(MI_A) },
        'cert-device': {
          clientId: CERT_APP,
          flow: 'device_code',
          credential: { type: 'certificate', secretName: 'cert-bundle' },
        },
      },
      overrides: { managedIdentityTimeoutMs: 3000 },
    });
    // The MI simulator's tokens follow the same injected clock as the Entra simulator.
    now = () => stack.clock.now();
    const redirectUris = [`${stack.url}/api/callback`];
    stack.sim.registerClient({
      clientId: MI_APP,
      redirectUris,
      federatedCredentials: Object.values(IDENTITIES).map((subject) => ({
        issuer: mi.issuer,
        subject,
        audience: EXCHANGE,
        publicKeys: [mi.publicKey],
      })),
    });
    stack.sim.registerClient({ clientId: CERT_APP, redirectUris, certificates: [cert.cert] });
    stack.sim.registerClient({
      clientId: WRONG_SUBJECT_APP,
      redirectUris,
      federatedCredentials: [
        { issuer: mi.issuer, subject: 'not-the-broker', audience: EXCHANGE, publicKeys: [mi.publicKey] },
      ],
    });
    await stack.local.broker.store.setSecret('cert-bundle', cert.bundle);
    await stack.local.broker.store.setSecret('bad-bundle', mismatched);
  });
  afterAll(async () => {
    await stack?.close();
    await mi?.close();
    restoreEnv?.();
  });

  // The SDK caches managed identity tokens by the real clock, the broker by the injected one: the two
  // scenarios that depend on the SDK fetching anew run first, before the injected clock runs ahead.
  it('managed identity endpoint down or slow: 503 with Retry-After, the grant untouched', async () => {
    mi.lifetimeSec = 240; // no cached MI token to fall back on
    try {
      expect((await consent(stack.url, stack.local.functionKey, 'mi-c')).status).toBe(200);
      const before = (await health('mi-c')).refreshedAt;
      const sent = formsOf(MI_APP).length;
      mi.failNext(500, 100);
      const down = await token('mi-c', OTHER_SCOPE);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await down.json()) as { code: string }).code).toBe('upstream_unavailable');
      mi.clearFaults();
      mi.hangNext(10_000);
      const slow = await token('mi-c', OTHER_SCOPE);
      expect(slow.status).toBe(503);
      mi.clearFaults();
      // Entra was never asked: nothing was redeemed, the grant is as it was.
      expect(formsOf(MI_APP).length).toBe(sent);
      const after = await health('mi-c');
      expect(after.status).toBe('connected');
      expect(after.refreshedAt).toBe(before);
      expect((await token('mi-c', OTHER_SCOPE)).status).toBe(200);
    } finally {
      mi.lifetimeSec = 3600;
      mi.clearFaults();
    }
  });

  it('managed identity: a token about to expire is replaced before it is sent', async () => {
    // Shorter than the SDK's own 5-minute margin: it fetches anew each time, and the broker's check decides.
    mi.lifetimeSec = 240;
    try {
      expect((await consent(stack.url, stack.local.functionKey, 'mi-b')).status).toBe(200);
      const first = formsOf(MI_APP).at(-1)!.form.client_assertion!;
      stack.clock.advance(300_000); // the first MI token is now expired (Entra's skew aside)
      expect((await token('mi-b', OTHER_SCOPE)).status).toBe(200);
      const second = formsOf(MI_APP).at(-1)!.form.client_assertion!;
      expect(second).not.toBe(first);
      const exp = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).exp;
      expect(exp(second) * 1000).toBeGreaterThan(stack.clock.now());
      expect(issuedBy(MI_B)).toBeGreaterThanOrEqual(2);
    } finally {
      mi.lifetimeSec = 3600;
    }
  });

  it('managed identity: consent, token, refresh and rotation with a cached MI token as the assertion', async () => {
    await lifecycle('mi-a', 2 * 60_000);
    // One MI token served all of it: the SDK's cache and the broker's.
    expect(issuedBy(MI_A)).toBe(1);
    for (const form of assertionForms(MI_APP)) expect(mi.issued).toContain(form.client_assertion);
    // What the SDK asked the endpoint for: the exchange audience, for the configured identity.
    expect(mi.requests.find((r) => r.client_id === MI_A)).toMatchObject({
      resource: EXCHANGE,
      'api-version': '2019-08-01',
    });
  });

  it('device code: the poll authenticates with the assertion, never a secret', async () => {
    for (const [id, app] of [
      ['mi-device', MI_APP],
      ['cert-device', CERT_APP],
    ] as const) {
      const res = await stack.api(`/api/start?connection=${id}`, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(200);
      const started = (await res.json()) as { userCode: string; pollUrl: string };
      stack.sim.approveDevice(started.userCode, `${id}@contoso.com`);
      stack.clock.advance(5000);
      const url = new URL(started.pollUrl);
      const polled = await stack.api(`${url.pathname}${url.search}`, {
        headers: { accept: 'application/json' },
      });
      expect(await polled.json()).toEqual({ status: 'connected', account: `${id}@contoso.com` });
      const poll = formsOf(app)
        .filter((f) => f.form.grant_type === 'urn:ietf:params:oauth:grant-type:device_code')
        .at(-1)!;
      expect(poll.form).toMatchObject({ client_assertion_type: JWT_BEARER });
      expect(poll.form.client_secret).toBeUndefined();
      expect(poll.basicAuth).toBe(false);
    }
  });

  it('assertions the provider refuses: client_misconfigured with the fix named; 70021 transient for a managed identity', async () => {
    const problem = async (id: string) => {
      const outcome = await consent(stack.url, stack.local.functionKey, id, { accept: 'application/json' });
      return { status: outcome.status, body: JSON.parse(outcome.body) as { detail: string } };
    };
    // An app with only a client secret: no federated credential at all (AADSTS70021), which may be
    // propagation right after creation, so it is retried rather than called a dead client.
    const propagating = await problem('mi-to-secret-app');
    expect(propagating.status).toBe(503);
    expect(propagating.body).toMatchObject({
      code: 'upstream_unavailable',
      providerError: { aadsts: 70021 },
    });
    expect(propagating.body.detail).toMatch(/docs\/secretless\.md/);
    // A certificate the app does not know (AADSTS700027).
    const unknownCert = await problem('cert-to-secret-app');
    expect(unknownCert.status).toBe(502);
    expect(unknownCert.body).toMatchObject({
      code: 'client_misconfigured',
      providerError: { aadsts: 700027 },
    });
    expect(unknownCert.body.detail).toMatch(/upload the certificate/);
    expect(unknownCert.body.detail).not.toMatch(/broker secrets set/);
    // A federated credential naming another subject (AADSTS700213).
    const wrongSubject = await problem('mi-wrong-subject');
    expect(wrongSubject.status).toBe(502);
    expect(wrongSubject.body).toMatchObject({
      code: 'client_misconfigured',
      providerError: { aadsts: 700213 },
    });
    expect(wrongSubject.body.detail).toMatch(/object id/);
  });

  it('certificate: consent, token, refresh and rotation with fresh private_key_jwt assertions', async () => {
    await lifecycle('cert', 25 * 3600_000);
    const forms = assertionForms(CERT_APP);
    const jtis = new Set<string>();
    for (const form of forms) {
      const [header, payload] = form
        .client_assertion!.split('.')
        .slice(0, 2)
        .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
      expect(header).toMatchObject({ alg: 'RS256' });
      expect(header['x5t#S256']).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(payload).toMatchObject({
        iss: CERT_APP,
        sub: CERT_APP,
        aud: `${stack.simUrl}/organizations/oauth2/v2.0/token`,
      });
      expect(payload.exp - payload.iat).toBeLessThanOrEqual(600);
      jtis.add(payload.jti);
    }
    expect(jtis.size).toBe(forms.length);
  });

  it('certificate: its expiry is a status deadline', async () => {
    const notAfter = new Date(new X509Certificate(cert.cert).validTo).toISOString();
    expect((await health('cert')).deadlines).toContainEqual({
      kind: 'client_certificate_expiry',
      at: notAfter,
    });
  });

  it('a replayed certificate assertion is refused by the simulator', async () => {
    const last = formsOf(CERT_APP)
      .filter((f) => f.form.client_assertion && f.form.grant_type === 'refresh_token')
      .at(-1)!;
    const replay = await fetch(`${stack.simUrl}/organizations/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(last.form),
    });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('a key that does not match its certificate is client_misconfigured, naming the secret only', async () => {
    const outcome = await consent(stack.url, stack.local.functionKey, 'cert-bad', {
      accept: 'application/json',
    });
    expect(outcome.status).toBe(502);
    const problem = JSON.parse(outcome.body) as { code: string; detail: string };
    expect(problem.code).toBe('client_misconfigured');
    expect(problem.detail).toContain('bad-bundle');
    expect(problem.detail).toMatch(/matches none of its certificates/);
    expect(outcome.body).not.toContain('PRIVATE KEY');
    expect(stack.logs.join('\n')).not.toContain(mismatched.slice(40, 120));
  });

  it('an app with only a certificate refuses a client secret', async () => {
    const outcome = await consent(stack.url, stack.local.functionKey, 'secret-to-cert-app', {
      accept: 'application/json',
    });
    expect(outcome.status).toBe(502);
    expect(JSON.parse(outcome.body)).toMatchObject({
      code: 'client_misconfigured',
      providerError: { aadsts: 7000215 },
    });
  });

  it('broker check reports each credential: secret, certificate (subject, thumbprint, notAfter), managed identity', async () => {
    const lines: string[] = [];
    const code = await runCheck({
      env: stack.env,
      out: (l) => lines.push(l),
      openStore: async () => stack.local.broker.store,
      now: () => stack.clock.now(),
    });
    const text = lines.join('\n');
    const x509 = new X509Certificate(cert.cert);
    const day = new Date(x509.validTo).toISOString().slice(0, 10);
    expect(text).toContain(
      `ok    connection cert: certificate cert-bundle present (subject CN=broker secretless test, thumbprint ${x509.fingerprint.replace(/:/g, '')}), expires on ${day}`,
    );
    // The real SDK, against the endpoint simulator, for the exchange audience.
    expect(text).toContain(
      `ok    connection mi-a: managed identity ${MI_A} can get a token for ${EXCHANGE} now`,
    );
    expect(text).toContain(
      'FAIL  connection cert-bad: certificate bad-bundle has a private key that matches none of its certificates',
    );
    expect(text).toContain('ok    connection secret-to-cert-app: client secret app-secret present');
    expect(text).not.toContain('PRIVATE KEY');
    expect(code).toBe(1);
  });

  it('leaks no MI token, assertion or key into logs or files', async () => {
    const assertions = stack.sim.tokenRequests
      .map((r) => r.form.client_assertion)
      .filter((a): a is string => !!a);
    const keyBody = cert.key.split('\n').slice(1, 3).join('');
    expect(await findLeaks(stack, [...mi.issued, ...assertions, keyBody])).toEqual([]);
  });
});

describe('secretless credentials: refused at start-up', () => {
  it('managedIdentity with tenant consumers says why and what to use instead', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'broker-secretless-'));
    try {
      const env = {
        BROKER_DATA_DIR: dataDir,
        PORT: '0',
        BROKER_FUNCTION_KEY: 'k'.repeat(32),
        BROKER_CONNECTIONS: JSON.stringify({
          connections: {
            mail: {
              provider: 'entra',
              tenant: 'consumers',
              clientId: MI_APP,
              credential: { type: 'managedIdentity' },
              scopes: ['https://graph.microsoft.com/Mail.Read'],
            },
          },
        }),
      };
      await expect(runLocal({ env, timers: false })).rejects.toThrow(
        /consumers.*personal Microsoft accounts.*certificate or a secret/s,
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

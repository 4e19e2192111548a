import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionHealth } from '../../src/lib/health/status-service.js';
import {
  type ManagedIdentityFake,
  startManagedIdentitySimulator,
  useManagedIdentityEnv,
} from '../fakes/managed-identity.js';
import { type TestCertificate, testCertificate } from '../fakes/tls.js';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.js';
import { findLeaks, type Stack, startStack } from './harness.js';

const SECRET_APP = 'a9d3c5e1-1111-4a2b-8c3d-4e5f6a7b8c01';
const CERT_APP = 'a9d3c5e1-2222-4a2b-8c3d-4e5f6a7b8c02';
const MI_APP = 'a9d3c5e1-3333-4a2b-8c3d-4e5f6a7b8c03';
const NO_SP_APP = 'a9d3c5e1-4444-4a2b-8c3d-4e5f6a7b8c04';
const MI_CLIENT = 'd0000000-0000-4000-8000-00000000000d';
const MI_OBJECT = 'd1111111-1111-4111-8111-11111111111d';
/** The simulator's tenant for a domain in the path. */
const TID = '72f988bf-0000-4000-8000-00000000c0de';
const TENANT = 'contoso.onmicrosoft.com';
const EXCHANGE_APP_ID = '00000002-0000-0ff1-ce00-000000000000';
const OUTLOOK = 'https://outlook.office365.com/.default';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface TokenBody {
  access_token: string;
  xoauth2?: string;
  expires_in: number;
}

const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/**
 * App-only connections (issue 26): `"flow": "client_credentials"` with a secret, a certificate and
 * the broker's managed identity as federated credential, through the embedded host against the
 * Entra simulator; on the file store, and on the Key Vault store under BROKER_E2E_STORE=keyvault.
 */
describe('app-only connections (client credentials)', () => {
  let stack: Stack;
  let mi: ManagedIdentityFake;
  let restoreEnv: () => void;
  let cert: TestCertificate;
  let receiver: WebhookReceiver;

  const formsOf = (clientId: string) => stack.sim.tokenRequests.filter((r) => r.form.client_id === clientId);
  const token = (id: string, extra = '') => stack.api(`/api/token?connection=${id}${extra}`);
  const health = async (id: string) => {
    const body = (await (await stack.api('/api/status')).json()) as { connections: ConnectionHealth[] };
    return body.connections.find((c) => c.id === id)!;
  };
  const appOnly = (clientId: string, more: Record<string, unknown> = {}) => ({
    flow: 'client_credentials',
    tenant: TENANT,
    clientId,
    scopes: [OUTLOOK],
    allowedScopes: [],
    mailboxes: ['desk1@contoso.com', 'Desk2@Contoso.com'],
    ...more,
  });

  beforeAll(async () => {
    const startedAt = Date.now();
    let now = () => startedAt;
    mi = await startManagedIdentitySimulator({ now: () => now(), identities: { [MI_CLIENT]: MI_OBJECT } });
    restoreEnv = useManagedIdentityEnv(mi);
    cert = testCertificate({ cn: 'broker app-only test' });
    receiver = await startWebhookReceiver();
    stack = await startStack({
      env: { ALERT_WEBHOOK_URL: receiver.url },
      connections: {
        support: {},
        'desk-secret': appOnly(SECRET_APP, { credential: { type: 'secret', secretName: 'desk-secret' } }),
        'desk-cert': appOnly(CERT_APP, { credential: { type: 'certificate', secretName: 'desk-cert' } }),
        'desk-mi': appOnly(MI_APP, { credential: { type: 'managedIdentity', clientId: MI_CLIENT } }),
        'desk-no-sp': appOnly(NO_SP_APP, { credential: { type: 'secret', secretName: 'desk-secret' } }),
        'desk-rotating': appOnly(SECRET_APP, {
          credential: { type: 'secret', secretName: 'desk-secret' },
          rotateAfter: 'PT6H',
        }),
      },
      overrides: { managedIdentityTimeoutMs: 3000 },
    });
    now = () => stack.clock.now();
    const appSecret = `desk-secret-${Math.random().toString(36).slice(2)}`;
    const roles = { [EXCHANGE_APP_ID]: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp'] };
    stack.sim.registerClient({ clientId: SECRET_APP, secret: appSecret, redirectUris: [], appRoles: roles });
    stack.sim.registerClient({
      clientId: CERT_APP,
      redirectUris: [],
      certificates: [cert.cert],
      appRoles: roles,
    });
    stack.sim.registerClient({
      clientId: MI_APP,
      redirectUris: [],
      appRoles: roles,
      federatedCredentials: [
        {
          issuer: mi.issuer,
          subject: MI_OBJECT,
          audience: 'api://AzureADTokenExchange',
          publicKeys: [mi.publicKey],
        },
      ],
    });
    stack.sim.registerClient({
      clientId: NO_SP_APP,
      secret: appSecret,
      redirectUris: [],
      servicePrincipalTenants: ['00000000-0000-4000-8000-0000000000ff'],
    });
    await stack.local.broker.store.setSecret('desk-secret', appSecret);
    await stack.local.broker.store.setSecret('desk-cert', cert.bundle);
  });
  afterAll(async () => {
    await stack?.close();
    await mi?.close();
    await receiver?.close();
    restoreEnv?.();
  });

  it('secret: not_connected before, an app token (roles, idtyp app, no scp) after, and no rt- secret', async () => {
    expect((await health('desk-secret')).status).toBe('not_connected');
    expect((await health('desk-secret')).remedy).toBeNull();
    const res = await token('desk-secret');
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenBody;
    const claims = claimsOf(body.access_token);
    expect(claims).toMatchObject({
      idtyp: 'app',
      aud: 'https://outlook.office365.com',
      tid: TID,
      appid: SECRET_APP,
    });
    expect(claims.roles).toEqual(['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp']);
    expect(claims.scp).toBeUndefined();
    const [form] = formsOf(SECRET_APP).map((f) => f.form);
    expect(form).toMatchObject({ grant_type: 'client_credentials', scope: OUTLOOK });
    expect(form!.refresh_token).toBeUndefined();
    const after = await health('desk-secret');
    expect(after).toMatchObject({
      status: 'connected',
      flow: 'client_credentials',
      lastError: null,
      remedy: null,
    });
    expect(after.refreshedAt).not.toBeNull();
    // Only a refresh-token deadline would come from a grant; an app-only connection has none.
    expect(after.deadlines.map((d) => d.kind)).not.toContain('refresh_token_inactivity');
    const names = (await stack.local.broker.store.listSecrets()).map((p) => p.name);
    expect(names.filter((n) => n.startsWith('rt-'))).toEqual([]);
    expect(names).toContain('broker-app-desk-secret');
  });

  it('cached and single-flight like delegated tokens', async () => {
    const before = formsOf(SECRET_APP).length;
    const answers = await Promise.all(Array.from({ length: 8 }, () => token('desk-secret')));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(formsOf(SECRET_APP).length).toBe(before);
    // Near expiry: many callers at once, one request to the provider.
    stack.clock.advance(3600_000);
    const burst = await Promise.all(Array.from({ length: 8 }, () => token('desk-secret')));
    expect(burst.every((r) => r.status === 200)).toBe(true);
    expect(formsOf(SECRET_APP).length).toBe(before + 1);
  });

  it('xoauth2 for a listed mailbox (case-insensitive, spelled as configured)', async () => {
    const res = await token('desk-secret', '&format=xoauth2&user=DESK2%40contoso.COM');
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenBody;
    const sasl = Buffer.from(body.xoauth2!, 'base64').toString();
    expect(sasl).toBe(`user=Desk2@Contoso.com\x01auth=Bearer ${body.access_token}\x01\x01`);
  });

  it('403 mailbox_not_allowed for other mailboxes and for user= on delegated connections, provider not called', async () => {
    const sent = stack.sim.stats.tokenRequests;
    const other = await token('desk-secret', '&format=xoauth2&user=ceo%40contoso.com');
    expect(other.status).toBe(403);
    expect(((await other.json()) as { code: string }).code).toBe('mailbox_not_allowed');
    const delegated = await token('support', '&format=xoauth2&user=desk1%40contoso.com');
    expect(delegated.status).toBe(403);
    expect(((await delegated.json()) as { code: string }).code).toBe('mailbox_not_allowed');
    expect(stack.sim.stats.tokenRequests).toBe(sent);
  });

  it('400 invalid_request for a user= that is not a plain address', async () => {
    const sent = stack.sim.stats.tokenRequests;
    const bad = [
      'desk1%40contoso.com%0D%0Aauth%3DBearer%20x',
      'desk1%40contoso.com%0A',
      'desk1%40contoso.com%01auth%3DBearer%20x',
      'desk%201%40contoso.com',
      `${'a'.repeat(64)}%40${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(63)}.com`,
      'not-an-address',
      '%40contoso.com',
    ];
    for (const user of bad) {
      const res = await token('desk-secret', `&format=xoauth2&user=${user}`);
      expect(res.status, user).toBe(400);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('invalid_request');
      expect(problem.detail).not.toContain('Bearer');
    }
    // format=xoauth2 without user= on an app-only connection: there is no account to name.
    expect((await token('desk-secret', '&format=xoauth2')).status).toBe(400);
    expect(stack.sim.stats.tokenRequests).toBe(sent);
  });

  it('certificate: a signed assertion, no secret on the wire', async () => {
    const res = await token('desk-cert', '&format=xoauth2&user=desk1%40contoso.com');
    expect(res.status).toBe(200);
    const forms = formsOf(CERT_APP);
    expect(forms.length).toBeGreaterThan(0);
    for (const { form, basicAuth } of forms) {
      expect(form).toMatchObject({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER });
      expect(form.client_secret).toBeUndefined();
      expect(basicAuth).toBe(false);
    }
    expect(claimsOf(((await res.json()) as TokenBody).access_token).appidacr).toBe('2');
    const h = await health('desk-cert');
    expect(h.status).toBe('connected');
    expect(h.deadlines.map((d) => d.kind)).toEqual(['client_certificate_expiry']);
  });

  it('managed identity: a federated assertion, no secret anywhere', async () => {
    const res = await token('desk-mi');
    expect(res.status).toBe(200);
    const forms = formsOf(MI_APP);
    expect(forms.length).toBeGreaterThan(0);
    for (const { form, basicAuth } of forms) {
      expect(form.client_assertion_type).toBe(JWT_BEARER);
      expect(claimsOf(form.client_assertion!)).toMatchObject({
        sub: MI_OBJECT,
        aud: 'api://AzureADTokenExchange',
      });
      expect(form.client_secret).toBeUndefined();
      expect(basicAuth).toBe(false);
    }
    expect(mi.requests.length).toBeGreaterThan(0);
    expect((await health('desk-mi')).status).toBe('connected');
  });

  it('no service principal in the tenant: classified, remedied with admin consent naming the tenant', async () => {
    const res = await token('desk-no-sp');
    expect(res.status).toBe(502);
    const problem = (await res.json()) as { code: string; remedy: { kind: string; text: string } };
    expect(problem.code).toBe('client_misconfigured');
    expect(problem.remedy.kind).toBe('admin_consent');
    expect(problem.remedy.text).toContain(TENANT);
    expect(problem.remedy.text).toContain(`adminconsent?client_id=${NO_SP_APP}`);
    const h = await health('desk-no-sp');
    expect(h).toMatchObject({ status: 'not_connected', lastError: 'invalid_client AADSTS7000229' });
    expect(h.remedy?.kind).toBe('admin_consent');
    expect(h.remedy?.text).toContain(TENANT);
  });

  it('an expired secret: new_client_secret; a renewed one clears it', async () => {
    stack.sim.setClientSecretExpired(SECRET_APP, true);
    try {
      stack.clock.advance(3600_000);
      const res = await token('desk-secret');
      expect(res.status).toBe(502);
      const h = await health('desk-secret');
      expect(h).toMatchObject({ status: 'connected', lastError: 'invalid_client AADSTS7000222' });
      expect(h.remedy?.kind).toBe('new_client_secret');
      expect(h.remedy?.text).toContain('broker secrets set desk-secret');
    } finally {
      stack.sim.setClientSecretExpired(SECRET_APP, false);
    }
    expect((await token('desk-secret')).status).toBe(200);
    expect(await health('desk-secret')).toMatchObject({ status: 'connected', lastError: null, remedy: null });
    // Told once each way, as for any connection, with the app-only remedy.
    await stack.local.broker.events.drain();
    const events = receiver.events.filter((e) => e.connection === 'desk-secret');
    expect(events.map((e) => e.type)).toEqual(['connection.client_misconfigured', 'connection.recovered']);
    expect((events[0]!.remedy as { kind: string }).kind).toBe('new_client_secret');
  });

  it('the rotation pass proves each due app-only connection with one token request', async () => {
    const rotation = stack.local.broker.rotation;
    // Never requested: due, and connected afterwards.
    expect((await health('desk-rotating')).status).toBe('not_connected');
    const sent = formsOf(SECRET_APP).length;
    const first = await rotation.rotationPass({ onlyId: 'desk-rotating' });
    expect(first).toEqual([{ connection: 'desk-rotating', outcome: 'rotated' }]);
    expect(formsOf(SECRET_APP).length).toBe(sent + 1);
    expect((await health('desk-rotating')).status).toBe('connected');
    // Fresh until rotateAfter has passed since the last successful request.
    stack.clock.advance(5 * 3600_000);
    expect((await rotation.rotationPass({ onlyId: 'desk-rotating' }))[0]).toMatchObject({
      outcome: 'skipped',
      reason: 'fresh',
    });
    stack.clock.advance(3600_000);
    expect((await rotation.rotationPass({ onlyId: 'desk-rotating' }))[0]).toMatchObject({
      outcome: 'rotated',
    });
    // A refused credential is reported, not connected.
    const noSp = await rotation.rotationPass({ onlyId: 'desk-no-sp' });
    expect(noSp[0]).toMatchObject({ outcome: 'client_misconfigured', error: 'invalid_client AADSTS7000229' });
    const names = (await stack.local.broker.store.listSecrets()).map((p) => p.name);
    expect(names.filter((n) => n.startsWith('rt-'))).toEqual([]);
  });

  it('consent is refused for an app-only connection', async () => {
    const res = await stack.api('/api/start?connection=desk-secret');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
  });

  it('leaks no token, secret or assertion into logs or files', async () => {
    expect(await findLeaks(stack, [...mi.issued, cert.key])).toEqual([]);
  });
});

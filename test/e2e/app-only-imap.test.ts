import { createPublicKey, type JsonWebKey, verify } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateXoauth2, type Dovecot, dovecotBinary, startDovecot } from '../support/dovecot.js';
import { type Stack, startStack } from './harness.js';

const APP = 'b7c1d2e3-5555-4a2b-8c3d-4e5f6a7b8c05';
const SP_OBJECT_ID = 'b7c1d2e3-6666-4a2b-8c3d-4e5f6a7b8c06';
const TENANT = 'contoso.onmicrosoft.com';
const EXCHANGE_APP_ID = '00000002-0000-0ff1-ce00-000000000000';

/** On a machine without Dovecot the test is skipped; in CI (which installs it) it must run. */
const skip = dovecotBinary() === undefined && process.env.CI !== 'true';

/**
 * Issue 26's real IMAP login: an app-only token from the broker (client credentials against the
 * Entra simulator) opens a mailbox on a real Dovecot, through XOAUTH2 — the broker's own SASL
 * string sent as is, and imapflow as a service would use it. Dovecot's oauth2 passdb asks an
 * introspection endpoint that plays Exchange Online: the token must be the simulator's (signature
 * checked against its JWKS), for https://outlook.office365.com, an app token with the
 * IMAP.AccessAsApp role, and the mailbox must be one granted to that service principal
 * (Add-MailboxPermission in Exchange, docs/app-only.md).
 */
describe.skipIf(skip)('app-only XOAUTH2 login on a real IMAP server (Dovecot)', () => {
  let stack: Stack;
  let dovecot: Dovecot;
  /** Exchange's mailbox permissions: service principal object id → mailboxes it may open. */
  const granted = new Map<string, string[]>([[SP_OBJECT_ID, ['desk1@contoso.com']]]);
  let keys: JsonWebKey[] = [];

  /** What Exchange checks of an app token, as an RFC 7662 answer naming the mailbox asked for. */
  const introspect = (token: string, user: string) => {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return false;
    const kid = JSON.parse(Buffer.from(header, 'base64url').toString()).kid;
    const jwk = keys.find((k) => k.kid === kid);
    if (!jwk) return false;
    const signed = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      createPublicKey({ key: jwk, format: 'jwk' }),
      Buffer.from(signature, 'base64url'),
    );
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    return (
      signed &&
      claims.aud === 'https://outlook.office365.com' &&
      claims.idtyp === 'app' &&
      claims.scp === undefined &&
      Array.isArray(claims.roles) &&
      claims.roles.includes('IMAP.AccessAsApp') &&
      claims.exp * 1000 > stack.clock.now() &&
      (granted.get(claims.oid) ?? []).includes(user.toLowerCase())
    );
  };
  /** The mailbox the current login names: Dovecot sends only the token, so the test tells it. */
  let loginUser = '';

  beforeAll(async () => {
    stack = await startStack({
      connections: {
        desks: {
          flow: 'client_credentials',
          tenant: TENANT,
          clientId: APP,
          credential: { type: 'secret', secretName: 'desks-secret' },
          scopes: ['https://outlook.office365.com/.default'],
          allowedScopes: [],
          mailboxes: ['desk1@contoso.com', 'desk2@contoso.com'],
        },
      },
    });
    const secret = `desks-${Math.random().toString(36).slice(2)}`;
    stack.sim.registerClient({
      clientId: APP,
      secret,
      redirectUris: [],
      servicePrincipalId: SP_OBJECT_ID,
      appRoles: { [EXCHANGE_APP_ID]: ['IMAP.AccessAsApp'] },
    });
    await stack.local.broker.store.setSecret('desks-secret', secret);
    keys = (
      (await (await fetch(`${stack.simUrl}/${TENANT}/discovery/v2.0/keys`)).json()) as { keys: JsonWebKey[] }
    ).keys;
    dovecot = await startDovecot((token) =>
      introspect(token, loginUser) ? { username: loginUser } : undefined,
    );
  }, 30_000);
  afterAll(async () => {
    await dovecot?.close();
    await stack?.close();
  });

  const xoauth2For = async (user: string) => {
    const res = await stack.api(
      `/api/token?connection=desks&format=xoauth2&user=${encodeURIComponent(user)}`,
    );
    expect(res.status).toBe(200);
    return (await res.json()) as { access_token: string; xoauth2: string };
  };

  it("the broker's XOAUTH2 string opens a granted mailbox", async () => {
    const { xoauth2 } = await xoauth2For('desk1@contoso.com');
    loginUser = 'desk1@contoso.com';
    const answer = await authenticateXoauth2(dovecot.host, dovecot.port, xoauth2);
    expect(answer, await dovecot.log()).toMatch(/^A1 OK/);
  });

  it('imapflow logs in with the app token and opens INBOX', async () => {
    const { access_token } = await xoauth2For('DESK1@contoso.com');
    loginUser = 'desk1@contoso.com';
    const client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: 'desk1@contoso.com', accessToken: access_token },
      logger: false,
    });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      expect(box.path).toBe('INBOX');
    } finally {
      await client.logout();
    }
  });

  it('a mailbox the broker lists but Exchange never granted is refused by the server', async () => {
    const { xoauth2 } = await xoauth2For('desk2@contoso.com');
    loginUser = 'desk2@contoso.com';
    expect(await authenticateXoauth2(dovecot.host, dovecot.port, xoauth2)).toMatch(/^A1 NO/);
  });

  it('a token without the IMAP.AccessAsApp role is refused', async () => {
    const forged = stack.sim.signToken({
      aud: 'https://outlook.office365.com',
      idtyp: 'app',
      oid: SP_OBJECT_ID,
      exp: Math.floor(stack.clock.now() / 1000) + 600,
    });
    loginUser = 'desk1@contoso.com';
    const sasl = Buffer.from(`user=desk1@contoso.com\x01auth=Bearer ${forged}\x01\x01`).toString('base64');
    expect(await authenticateXoauth2(dovecot.host, dovecot.port, sasl)).toMatch(/^A1 NO/);
    expect(dovecot.introspected).toContain(forged);
  });
});

import { connect } from 'node:net';
import { SecretClient } from '@azure/keyvault-secrets';
import { AuthenticationHandler, Client } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/lib/src/authentication/azureTokenCredentials/index.js';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerCredential, BrokerError } from '../../clients/node/src/index.js';
import { FUNCTION_KEY, findLeaks, type Stack, startStack, TEST_ALLOWED_SCOPES } from '../e2e/harness.js';
import { consent } from '../fakes/consent-client.js';
import { startKeyVaultSimulator } from '../fakes/keyvault-simulator.js';
import { mailTokenChecker, OUTLOOK } from '../support/mail-oauth.js';
import { type GraphFront, HttpsTransport, startGraphFront } from './graph-front.js';

/**
 * The Node credential in the hands of real clients, against the embedded host and its Entra
 * simulator: the Microsoft Graph SDK reads `/me`, nodemailer sends through an SMTP server
 * (`smtp-server`) that checks the XOAUTH2 token with the simulator's keys.
 */
describe('BrokerCredential with the Graph SDK and nodemailer (embedded host)', () => {
  let stack: Stack;
  let front: GraphFront;
  const account = 'ana@contoso.com';

  beforeAll(async () => {
    // Key Vault's `.default` besides the mail scopes: for the Azure SDK client below.
    const allowedScopes = [...TEST_ALLOWED_SCOPES, 'https://vault.azure.net/.default'];
    stack = await startStack({ connections: { support: { allowedScopes } } });
    const done = await consent(stack.url, FUNCTION_KEY, 'support', { account });
    expect(done.status).toBe(200);
    front = await startGraphFront(stack.simUrl);
  });
  afterAll(async () => {
    await front?.close();
    await stack?.close();
  });

  it('the Graph SDK reads /me through the credential (TokenCredentialAuthenticationProvider)', async () => {
    // docs/clients.md, "Node: Microsoft Graph SDK"
    const credential = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: FUNCTION_KEY,
    });
    const authProvider = new TokenCredentialAuthenticationProvider(credential, {
      scopes: ['https://graph.microsoft.com/.default'],
    });
    const graph = Client.initWithMiddleware({
      baseUrl: front.baseUrl,
      customHosts: new Set(['localhost']),
      middleware: (() => {
        const auth = new AuthenticationHandler(authProvider);
        auth.setNext(new HttpsTransport());
        return auth;
      })(),
    });
    const me = await graph.api('/me').get();
    expect(me.userPrincipalName).toBe(account);
    await graph.api('/me').get();
    expect(front.seenBearer).toBe(2);
    // `.default` of Graph is the connection's own: one token request, without scope=.
    const vended = stack.logs.filter((l) => l.includes('token.vended'));
    expect(vended).toHaveLength(1);
    expect(await findLeaks(stack)).toEqual([]);
  });

  it('an Azure SDK client (Key Vault SecretClient) authenticates with the credential', async () => {
    const credential = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: FUNCTION_KEY,
    });
    // The vault simulator accepts one token: the one the broker vends for Key Vault (fetched, then cached).
    const { token } = await credential.getToken('https://vault.azure.net/.default');
    const vault = await startKeyVaultSimulator({ accessToken: token });
    try {
      // docs/clients.md, "Node: an Azure SDK client"
      const secrets = new SecretClient(vault.url, credential, {
        tlsOptions: { ca: vault.ca }, // the simulator's test CA; not needed for a real vault
        disableChallengeResourceVerification: true, // the simulator's host is 127.0.0.1, not *.vault.azure.net
      });
      await secrets.setSecret('greeting', 'hello');
      expect((await secrets.getSecret('greeting')).value).toBe('hello');
      expect(vault.sim.stats.challenges).toBeGreaterThan(0);
      expect(vault.sim.stats.unauthorized).toBe(0);
    } finally {
      await vault.close();
    }
  });

  it('a scope the connection may not vend → BrokerError scope_not_allowed, and the SDK call fails with it', async () => {
    const credential = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: FUNCTION_KEY,
    });
    const err = await credential.getToken('https://c.example.com/z').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toMatchObject({ code: 'scope_not_allowed', status: 403 });
    const wrongKey = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: 'not-the-key-0123',
    });
    const unauthorized = await wrongKey.getToken([]).catch((e: unknown) => e);
    expect(unauthorized).toMatchObject({ code: 'unauthorized', status: 401 });
    expect((unauthorized as Error).message).not.toContain('not-the-key-0123');
  });

  describe('nodemailer through smtp-server checking XOAUTH2', () => {
    let smtp: SMTPServer;
    let port: number;
    const received: Array<{ user: string; data: string }> = [];
    const refusals: string[] = [];

    beforeAll(async () => {
      const check = mailTokenChecker(stack.simUrl);
      smtp = new SMTPServer({
        authMethods: ['XOAUTH2'],
        allowInsecureAuth: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        onAuth(auth, _session, callback) {
          if (auth.method !== 'XOAUTH2' || !auth.accessToken) return callback(new Error('XOAUTH2 only'));
          check(auth.accessToken, 'SMTP.Send').then((result) => {
            if (result.ok && result.user.toLowerCase() === auth.username?.toLowerCase()) {
              return callback(null, { user: result.user });
            }
            refusals.push(result.ok ? `user ${auth.username} is not ${result.user}` : result.reason);
            // RFC 7628-style failure as Exchange answers it: the client sees 535.
            callback(null, { data: { status: '401', schemes: 'bearer', scope: `${OUTLOOK}/SMTP.Send` } });
          });
        },
        onData(stream, session, callback) {
          let data = '';
          stream.on('data', (c: Buffer) => {
            data += c.toString();
          });
          stream.on('end', () => {
            received.push({ user: String(session.user), data });
            callback();
          });
        },
      });
      await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
      port = (smtp.server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => smtp.close(() => resolve())));

    it('sends a message with a token from the credential (provisionCallback)', async () => {
      // docs/clients.md, "Node: nodemailer"
      const credential = new BrokerCredential({
        url: stack.url,
        connection: 'support',
        functionKey: FUNCTION_KEY,
      });
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        ignoreTLS: true,
        auth: {
          type: 'OAuth2',
          user: account,
          provisionCallback: (_user, _renew, callback) => {
            credential.getToken(`${OUTLOOK}/SMTP.Send`).then(
              (t) => callback(null, t.token, t.expiresOnTimestamp),
              (err: Error) => callback(err, '', 0),
            );
          },
        },
      });
      const info = await transport.sendMail({
        from: account,
        to: 'bob@contoso.com',
        subject: 'Hello from the broker',
        text: 'Sent with a brokered token.',
      });
      transport.close();
      expect(info.accepted).toEqual(['bob@contoso.com']);
      expect(received.at(-1)?.user).toBe(account);
      expect(received.at(-1)?.data).toContain('Sent with a brokered token.');
      expect(refusals).toEqual([]);
    });

    it('the xoauth2() string logs in as is (raw AUTH XOAUTH2), and a Graph token is refused', async () => {
      const credential = new BrokerCredential({
        url: stack.url,
        connection: 'support',
        functionKey: FUNCTION_KEY,
      });
      const talk = async (initial: string) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d) => {
          text += d;
        });
        const until = async (re: RegExp) => {
          for (let i = 0; i < 100 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 20));
        };
        await until(/^220 /m);
        socket.write('EHLO client.example\r\n');
        await until(/^250 /m);
        socket.write(`AUTH XOAUTH2 ${initial}\r\n`);
        await until(/^(235|334|535) /m);
        if (/^334 /m.test(text)) {
          socket.write('\r\n');
          await until(/^535 /m);
        }
        socket.end('QUIT\r\n');
        return text;
      };
      expect(await talk(await credential.xoauth2({ scopes: `${OUTLOOK}/SMTP.Send` }))).toMatch(/^235 /m);
      expect(refusals).toEqual([]);
      // The connection's own token is Graph's: the mail server refuses it.
      expect(await talk(await credential.xoauth2())).toMatch(/^535 /m);
      expect(refusals).toHaveLength(1);
    });
  });
});

import { connect } from 'node:net';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerCredential } from '../../clients/node/src/index.js';
import { FUNCTION_KEY, findLeaks, type Stack, startStack } from '../e2e/harness.js';
import { consent } from '../fakes/consent-client.js';
import { DOVECOT, type Dovecot, startDovecot } from '../support/dovecot.js';
import { type Introspection, mailTokenChecker, OUTLOOK, startIntrospection } from '../support/mail-oauth.js';

/**
 * imapflow logs in to a real Dovecot with a token from the credential. Dovecot's oauth2 passdb asks
 * an introspection endpoint, which checks the token with the Entra simulator's keys (audience
 * outlook.office.com, `IMAP.AccessAsUser.All`, the user's own). CI installs dovecot-imapd (.ci/run)
 * and must run this; a developer without Dovecot sees it skipped, with the reason.
 */
const available = DOVECOT !== undefined;
if (!available && process.env.CI !== 'true') {
  console.warn('imap-dovecot.test.ts skipped: dovecot is not installed (apt-get install dovecot-imapd).');
}

describe.skipIf(!available && process.env.CI !== 'true')('BrokerCredential with imapflow and Dovecot', () => {
  let stack: Stack;
  let introspection: Introspection;
  let dovecot: Dovecot;
  const account = 'ana@contoso.com';
  const IMAP = `${OUTLOOK}/IMAP.AccessAsUser.All`;

  beforeAll(async () => {
    stack = await startStack();
    expect((await consent(stack.url, FUNCTION_KEY, 'support', { account })).status).toBe(200);
    introspection = await startIntrospection(mailTokenChecker(stack.simUrl), 'IMAP.AccessAsUser.All');
    dovecot = await startDovecot(introspection.url);
  });
  afterAll(async () => {
    await dovecot?.close();
    await introspection?.close();
    await stack?.close();
  });

  it('imapflow logs in with the access token and opens INBOX', async () => {
    // docs/clients.md, "Node: imapflow"
    const credential = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: FUNCTION_KEY,
    });
    const { token } = await credential.getToken(IMAP);
    const client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      doSTARTTLS: false,
      auth: { user: account, accessToken: token },
      logger: false,
    });
    await client.connect();
    const mailbox = await client.mailboxOpen('INBOX');
    expect(mailbox.path).toBe('INBOX');
    await client.logout();
    expect(introspection.answers).toEqual([{ active: true, username: account }]);
    expect(await dovecot.log()).toMatch(/Login: user=<ana@contoso\.com>, method=(XOAUTH2|OAUTHBEARER)/);
    expect(await dovecot.log()).not.toContain(token);
    expect(await findLeaks(stack)).toEqual([]);
  });

  it('the xoauth2() string logs in as is (AUTHENTICATE XOAUTH2); a Graph token is refused', async () => {
    const credential = new BrokerCredential({
      url: stack.url,
      connection: 'support',
      functionKey: FUNCTION_KEY,
    });
    const login = async (sasl: string) => {
      const socket = connect(dovecot.port, dovecot.host);
      let text = '';
      socket.on('data', (d) => {
        text += d;
      });
      const until = async (re: RegExp) => {
        for (let i = 0; i < 200 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 20));
      };
      await until(/^\* OK/m);
      socket.write(`a AUTHENTICATE XOAUTH2 ${sasl}\r\n`);
      await until(/^(a OK|a NO|\+ )/m);
      // XOAUTH2's failure: a challenge with the error JSON, answered with an empty line.
      if (/^\+ /m.test(text)) {
        socket.write('\r\n');
        await until(/^a (OK|NO)/m);
      }
      socket.end('z LOGOUT\r\n');
      return text;
    };
    expect(await login(await credential.xoauth2({ scopes: IMAP }))).toMatch(/^a OK .*Logged in/m);
    expect(await login(await credential.xoauth2())).toMatch(/^a NO /m);
    expect(introspection.answers.at(-1)).toEqual({ active: false });
  });
});

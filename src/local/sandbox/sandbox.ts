import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Connection } from '../../lib/config/connections.js';
import { resolveConnection } from '../../lib/config/load.js';
import type { SecretStore } from '../../lib/store/secret-store.js';
import { filePersistence } from './entra/state-file.js';
import { EntraSimulator } from './entra-simulator.js';

export const SANDBOX_ID = 'sandbox';
/** The sandbox's app-only connection: client credentials for a mailbox, no sign-in (docs/app-only.md). */
export const SANDBOX_APP_ID = 'sandbox-app';
export const SANDBOX_MAILBOX = 'desk@contoso.com';
/** Office 365 Exchange Online's app id: the app roles IMAP/POP/SMTP app-only tokens carry. */
const EXCHANGE_ONLINE = '00000002-0000-0ff1-ce00-000000000000';
export const SANDBOX_PREFIX = '/sandbox';
const CLIENT_ID = '5a4db0c5-0000-4000-8000-000000000001';
const SECRET_NAME = 'sandbox-client-secret';

/**
 * Without configuration the embedded host serves a `sandbox` connection against a built-in Entra
 * simulator, so a newcomer sees the whole flow (Connect, sign in, curl a token) before registering an
 * app. Its client secret lives in the store like any other, generated on first start.
 */
export async function createSandbox(
  store: SecretStore,
  publicUrl: string,
  port: number,
  dataDir: string,
): Promise<{ connection: Connection; appOnly: Connection; simulator: EntraSimulator }> {
  let secret = (await store.getSecret(SECRET_NAME))?.value;
  if (!secret) {
    secret = randomBytes(24).toString('base64url');
    await store.setSecret(SECRET_NAME, secret, { tags: { purpose: 'sandbox' } });
  }
  const simulator = new EntraSimulator({
    prefix: SANDBOX_PREFIX,
    clients: [
      {
        clientId: CLIENT_ID,
        secret,
        redirectUris: [`${publicUrl}/api/callback`],
        // As if an admin granted IMAP.AccessAsApp etc. (the app-only connection's token carries them).
        appRoles: { [EXCHANGE_ONLINE]: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp'] },
      },
    ],
    // Its grants survive a restart, so the sandbox connection does too (refresh token hashes only).
    persistence: filePersistence(join(dataDir, 'sandbox-idp.json')),
  });
  const connection = resolveConnection(
    SANDBOX_ID,
    {
      provider: 'entra',
      flow: 'authorization_code',
      // The broker calls the simulator on the loopback address it listens on, whatever "localhost" resolves to.
      authority: `http://127.0.0.1:${port}${SANDBOX_PREFIX}`,
      tenant: 'common',
      clientId: CLIENT_ID,
      credential: { type: 'secret', secretName: SECRET_NAME },
      scopes: ['User.Read', 'Mail.Read'],
      rotateAfter: 'PT24H',
    },
    { publicUrl },
  );
  const appOnly = resolveConnection(
    SANDBOX_APP_ID,
    {
      provider: 'entra',
      flow: 'client_credentials',
      authority: `http://127.0.0.1:${port}${SANDBOX_PREFIX}`,
      tenant: 'contoso.onmicrosoft.com',
      clientId: CLIENT_ID,
      credential: { type: 'secret', secretName: SECRET_NAME },
      scopes: ['https://outlook.office365.com/.default'],
      mailboxes: [SANDBOX_MAILBOX],
      rotateAfter: 'PT24H',
    },
    { publicUrl },
  );
  return { connection, appOnly, simulator };
}

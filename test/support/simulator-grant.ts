/** Grants seeded through the Entra simulator's own protocol, for benches and tests that need many. */
import { createHash, randomBytes } from 'node:crypto';
import type { SecretStore } from '../../src/lib/store/secret-store.js';

export interface SimulatorGrantOptions {
  authority: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  account: string;
  scope: string;
}

/**
 * One authorization-code + PKCE grant from the Entra simulator, as a browser and the broker would
 * get it: the refresh token a past consent would have stored.
 */
export async function simulatorGrant(options: SimulatorGrantOptions): Promise<string> {
  const verifier = randomBytes(32).toString('base64url');
  const signIn = await fetch(`${options.authority}/organizations/oauth2/v2.0/authorize`, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: options.clientId,
      response_type: 'code',
      redirect_uri: options.redirectUri,
      scope: `${options.scope} offline_access openid profile`,
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      account: options.account,
      signin: 'Sign in',
    }),
    redirect: 'manual',
  });
  const code = new URL(signIn.headers.get('location')!).searchParams.get('code')!;
  const token = await fetch(`${options.authority}/organizations/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: options.clientId,
      client_secret: options.clientSecret,
      code,
      redirect_uri: options.redirectUri,
      code_verifier: verifier,
    }),
  });
  return ((await token.json()) as { refresh_token: string }).refresh_token;
}

/** A grant stored as a consent would have left it: `rt-ID`, connected, consented and refreshed `at`. */
export async function seedConnectedGrant(
  store: Pick<SecretStore, 'setSecret'>,
  connectionId: string,
  options: SimulatorGrantOptions,
  at = new Date(),
): Promise<void> {
  const refreshToken = await simulatorGrant(options);
  const when = at.toISOString();
  await store.setSecret(`rt-${connectionId}`, refreshToken, {
    tags: { account: options.account, status: 'connected', consentedAt: when, refreshedAt: when },
  });
}

/**
 * A consented Entra connection `support` for a broker run from its environment: its client secret
 * (`app-secret`) and grant stored, and the `BROKER_CONNECTIONS` value that names them.
 */
export async function seedSupportConnection(
  store: Pick<SecretStore, 'setSecret'>,
  app: { authority: string; clientId: string; clientSecret: string; redirectUri: string },
): Promise<string> {
  const scope = 'https://graph.microsoft.com/User.Read';
  await store.setSecret('app-secret', app.clientSecret);
  await seedConnectedGrant(store, 'support', { ...app, account: 'ana@contoso.com', scope });
  const support = {
    provider: 'entra',
    authority: app.authority,
    tenant: 'organizations',
    clientId: app.clientId,
    credential: { type: 'secret', secretName: 'app-secret' },
    scopes: [scope],
    redirectUri: app.redirectUri,
  };
  return JSON.stringify({ connections: { support } });
}

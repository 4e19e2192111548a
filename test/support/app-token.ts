import { expect } from 'vitest';

/**
 * What a calling service does: client credentials at the Entra simulator for `resource/.default`
 * (as its managed identity would), asserting Entra answered 200. The access token.
 */
export async function appToken(
  simUrl: string,
  app: { tenant: string; clientId: string; secret: string; resource: string },
): Promise<string> {
  const res = await fetch(`${simUrl}/${app.tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: app.secret,
      scope: `${app.resource}/.default`,
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

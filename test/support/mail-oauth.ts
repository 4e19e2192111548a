/**
 * What a mail server does with an OAuth 2 login (XOAUTH2): checks the bearer token with its
 * identity provider. Here the provider is the Entra simulator: the token must be signed by one of its
 * published keys (JWKS over HTTP, as Exchange would fetch Entra's), be for `https://outlook.office.com`
 * with the protocol's permission, be unexpired, and belong to the user who logs in.
 * `startIntrospection` serves the same check as an RFC 7662 introspection endpoint for Dovecot's
 * oauth2 passdb (`introspection_mode = post`).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export const OUTLOOK = 'https://outlook.office.com';

/** The user the token belongs to (`upn`), or why it is refused. */
export type MailTokenCheck = (
  token: string,
  permission: string,
) => Promise<{ ok: true; user: string } | { ok: false; reason: string }>;

/** Checks tokens against the simulator at `authority` (its `organizations` JWKS). */
export function mailTokenChecker(authority: string): MailTokenCheck {
  const jwks = createRemoteJWKSet(new URL(`${authority}/organizations/discovery/v2.0/keys`));
  return async (token, permission) => {
    try {
      const { payload } = await jwtVerify(token, jwks, { audience: OUTLOOK, algorithms: ['RS256'] });
      const scp = String(payload.scp ?? '').split(' ');
      if (!scp.includes(permission)) return { ok: false, reason: `no ${permission} in scp` };
      if (typeof payload.upn !== 'string') return { ok: false, reason: 'no upn' };
      return { ok: true, user: payload.upn };
    } catch (err) {
      return { ok: false, reason: (err as Error).name };
    }
  };
}

export interface Introspection {
  url: string;
  /** Every introspection answered: active or not (never the token). */
  answers: Array<{ active: boolean; username?: string }>;
  close(): Promise<void>;
}

/** `POST /introspect` with `token=` (RFC 7662 §2.1): `{active, username}` for a valid IMAP token. */
export async function startIntrospection(check: MailTokenCheck, permission: string): Promise<Introspection> {
  const answers: Introspection['answers'] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const token = new URLSearchParams(body).get('token') ?? '';
    const result =
      req.method === 'POST' ? await check(token, permission) : { ok: false as const, reason: '' };
    const answer = result.ok ? { active: true, username: result.user } : { active: false };
    answers.push(answer);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`,
    answers,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

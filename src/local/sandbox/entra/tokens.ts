/**
 * The token endpoint's success body, claim for claim as Entra issues it: a v1 access token for the
 * resource the scopes name, a v2 id token when `openid` was asked, a new refresh token when
 * `offline_access` was consented.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Grant } from './grant.js';
import type { GrantStore } from './grants.js';
import { GRAPH, resolveScopes } from './scopes.js';
import type { JwtSigner } from './signing.js';

export class TokenIssuer {
  constructor(
    private readonly signer: JwtSigner,
    private readonly grants: GrantStore,
    private readonly now: () => number,
    /** `expires_in` is one less, as Entra answers 3599 for an hour. */
    private readonly lifetimeSec: number,
  ) {}

  /** The success body; `scopes` pick the resource (the access token's `aud`), `multi` how many are allowed. */
  issue(grant: Grant, scopes: string[], multi: 'first' | 'single', nonce?: string): object {
    const { resource, permissions, oidc } = resolveScopes(scopes, multi);
    const iat = Math.floor(this.now() / 1000);
    const expiresIn = Math.max(1, this.lifetimeSec - 1);
    const user = identity(grant);
    // As Entra words it: permissions, then `profile openid email` (email comes with openid), never offline_access.
    const oidcGranted = ['profile', 'openid', 'email'].filter(
      (s) => oidc.includes(s) || (s === 'email' && oidc.includes('openid')),
    );
    const accessToken = this.signer.sign({
      aud: resource,
      iss: `https://sts.windows.net/${grant.tid}/`,
      iat,
      nbf: iat,
      exp: iat + expiresIn,
      appid: grant.clientId,
      name: user.name,
      oid: user.oid,
      preferred_username: grant.account,
      scp: [...permissions, ...oidcGranted].join(' '),
      sub: user.subFor(resource),
      tid: grant.tid,
      upn: grant.account,
      jti: randomUUID(),
      ver: '1.0',
    });
    // Graph permissions come back short (`User.Read`), any other resource's in full.
    const fullPermissions = permissions.map((p) => (resource === GRAPH ? p : `${resource}/${p}`));
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: [...fullPermissions, ...oidcGranted].join(' '),
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: accessToken,
    };
    if (grant.scopes.includes('offline_access')) body.refresh_token = this.grants.issueRefreshToken(grant);
    if (oidc.includes('openid')) {
      body.id_token = this.signer.sign({
        aud: grant.clientId,
        iss: `https://login.microsoftonline.com/${grant.tid}/v2.0`,
        iat,
        nbf: iat,
        exp: iat + 3600,
        name: user.name,
        ...(oidc.includes('email') ? { email: grant.account } : {}),
        ...(nonce ? { nonce } : {}),
        oid: user.oid,
        preferred_username: grant.account,
        sub: user.subFor(grant.clientId),
        tid: grant.tid,
        ver: '2.0',
      });
    }
    return body;
  }
}

/** A stable made-up person per account: same oid every sign-in, pairwise `sub` per audience. */
function identity(grant: Grant) {
  const hash = (text: string) => createHash('sha256').update(text).digest();
  const digest = hash(`${grant.tid}|${grant.account.toLowerCase()}`).toString('hex');
  const oid = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-4${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
  const local = grant.account.split('@')[0] ?? grant.account;
  const name = local
    .split(/[._-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');
  return {
    oid,
    name,
    subFor: (audience: string) => hash(`${oid}|${audience}`).toString('base64url').slice(0, 43),
  };
}

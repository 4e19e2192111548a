/**
 * When asked scopes are "the connection's own", so that `scope=` is left out and the broker serves
 * its default token for the connection (shared by every caller of it):
 * - no scopes at all (`[]`, `''`);
 * - every asked scope is among the scopes the broker reported (`scope` of an answer without
 *   `scope=`), compared case-insensitively, Graph's short names (`User.Read`) read as
 *   `https://graph.microsoft.com/User.Read` as Entra reads them;
 * - `{resource}/.default` for a resource of those scopes (what the Azure and Graph SDKs ask by
 *   default: "whatever was consented for that resource", which is the connection's own).
 * Anything else goes to the broker as `scope=` (which it checks against `allowedScopes`).
 */
const GRAPH = 'https://graph.microsoft.com';
const OIDC = new Set(['openid', 'profile', 'email', 'offline_access']);

export function normalizeScopes(scopes: string | string[]): string[] {
  const list = (Array.isArray(scopes) ? scopes : [scopes]).flatMap((s) => s.split(/\s+/));
  return [...new Set(list.filter(Boolean))];
}

function fullName(scope: string): string {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(scope) && !OIDC.has(scope.toLowerCase())
    ? `${GRAPH}/${scope}`.toLowerCase()
    : scope.toLowerCase();
}

const resourceOf = (scope: string): string => scope.replace(/\/[^/]*$/, '');

/** The connection's own scopes as reported by the broker, ready for `isOwn`. */
export function ownScopeSet(reported: string): Set<string> {
  return new Set(normalizeScopes(reported).map(fullName));
}

export function isOwn(asked: readonly string[], own: ReadonlySet<string>): boolean {
  if (asked.length === 0) return true;
  const resources = new Set([...own].map(resourceOf));
  return asked.every((scope) => {
    const full = fullName(scope);
    if (own.has(full)) return true;
    return full.endsWith('/.default') && resources.has(resourceOf(full));
  });
}

/** How Entra reads a `scope` parameter: OIDC scopes apart, and one resource per access token. */
import { EntraError } from './errors.js';

export const GRAPH = 'https://graph.microsoft.com';
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);

export const splitScopes = (value: string | null): string[] => (value ?? '').split(/\s+/).filter(Boolean);

/**
 * One access token is for one resource. Graph permissions may be short (`User.Read`); others are
 * `{resource}/{permission}`. At code redemption the first resource wins, as in Entra; a refresh
 * naming two resources is refused (AADSTS28000).
 */
export function resolveScopes(scopes: string[], multi: 'first' | 'single') {
  const oidc: string[] = [];
  const byResource = new Map<string, string[]>();
  for (const scope of scopes) {
    if (OIDC_SCOPES.has(scope.toLowerCase())) {
      oidc.push(scope.toLowerCase());
      continue;
    }
    const uri = /^((?:https:\/\/|api:\/\/)[^\s/]+(?:\/[^\s/]+)*|[0-9a-f-]{36})\/([A-Za-z0-9._-]+)$/i.exec(
      scope,
    );
    const short = /^[A-Za-z][A-Za-z0-9._-]*$/.test(scope);
    if (!uri && !short) {
      const message = `The provided value for the input parameter 'scope' isn't valid. The scope ${scope} isn't valid.`;
      throw new EntraError('invalid_scope', 70011, message);
    }
    const resource = uri ? uri[1]!.replace(/\/$/, '') : GRAPH;
    const permission = uri ? uri[2]! : scope;
    byResource.set(resource, [...(byResource.get(resource) ?? []), permission]);
  }
  if (multi === 'single' && byResource.size > 1) {
    const message = `Provided value for the input parameter scope '${scopes.join(' ')}' is not valid because it contains more than one resource. Scope ${scopes.join(' ')} is not valid.`;
    throw new EntraError('invalid_scope', 28000, message);
  }
  const [first] = byResource;
  return { resource: first?.[0] ?? GRAPH, permissions: first?.[1] ?? [], oidc };
}

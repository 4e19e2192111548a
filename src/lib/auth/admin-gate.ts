import type { AdminAuthSettings } from '../config/settings.js';
import type { Actor } from '../definitions/definition-store.js';
import { BrokerError } from '../errors.js';
import type { CallerGate } from './caller-gate.js';
import type { PersonAuth } from './person-auth.js';

/** The function key, as `by` names it in entries and log lines. */
export const FUNCTION_KEY_ACTOR: Actor = { name: 'function-key' };

export type AdminCheck =
  | { allowed: true; by: Actor }
  /** Nobody signed in: a browser is sent to sign in at this path. */
  | { allowed: false; signIn: string };

/** Who may use the admin routes (`/api/connections*`, `/api/templates*`, invitations). */
export type AdminGate = (
  headers: { get(name: string): string | null },
  pathAndQuery: string,
) => Promise<AdminCheck>;

/**
 * The admin rule of "Who may ask" (docs/connections.md):
 * - `ADMIN_AUTH=key`: the route is function-level at the host, which has checked the key.
 * - `ADMIN_AUTH=easyauth`: the route is anonymous at the host. A request with
 *   `Authorization: Bearer` under `CALLER_AUTH=entra` is a service: its app token is validated as
 *   callers' are and must carry the app role `ADMIN_ROLE`. Otherwise it is a person signed in by
 *   App Service, who needs the same role. Authenticated without the role → 403 `forbidden`.
 */
export function adminGate(settings: AdminAuthSettings, people: PersonAuth, callers: CallerGate): AdminGate {
  if (settings.mode === 'key') return async () => ({ allowed: true, by: FUNCTION_KEY_ACTOR });
  const { role } = settings;
  return async (headers, pathAndQuery) => {
    const authorization = headers.get('authorization');
    if (callers.authenticate && authorization && /^Bearer\s/i.test(authorization.trim())) {
      const app = await callers.authenticate(authorization);
      if (!app.roles.includes(role)) {
        throw new BrokerError(
          'forbidden',
          `The calling service (object id ${app.oid}) lacks the app role ${role} on the broker's app registration. An admin assigns it under Enterprise applications → the service → App role assignments.`,
        );
      }
      return { allowed: true, by: { name: app.name ?? app.oid, id: app.oid } };
    }
    const check = people.check(headers, pathAndQuery);
    if (!check.allowed) return check;
    const person = check.person ?? {};
    const by: Actor = { name: person.name ?? person.id ?? 'unknown' };
    if (person.id) by.id = person.id;
    return { allowed: true, by };
  };
}

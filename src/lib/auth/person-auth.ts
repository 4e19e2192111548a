import type { AdminAuthSettings } from '../config/settings.js';
import { BrokerError } from '../errors.js';

/** A signed-in person, as consent log lines name them. */
export interface Person {
  name?: string;
  /** Their Entra object id. */
  id?: string;
}

const PRINCIPAL_HEADER = 'x-ms-client-principal';
/** Base64 of a few KB of claims at most; App Service's own header stays well below this. */
const MAX_PRINCIPAL_CHARS = 16_384;
const OID_CLAIMS = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];
const ROLE_CLAIMS = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
/** The platform maps `tid` to the long name; either may arrive. */
const TENANT_CLAIMS = ['http://schemas.microsoft.com/identity/claims/tenantid', 'tid'];

interface ClientPrincipal {
  name_typ?: string;
  role_typ?: string;
  claims: { typ: string; val: string }[];
}

/** `X-MS-CLIENT-PRINCIPAL` (base64 JSON), or undefined when it is not one. */
function decodePrincipal(header: string): ClientPrincipal | undefined {
  if (header.length > MAX_PRINCIPAL_CHARS || !/^[A-Za-z0-9+/=_-]+$/.test(header)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { claims, name_typ, role_typ } = value as Record<string, unknown>;
  if (!Array.isArray(claims)) return undefined;
  const valid = claims.filter(
    (c): c is { typ: string; val: string } =>
      typeof c === 'object' && c !== null && typeof c.typ === 'string' && typeof c.val === 'string',
  );
  return {
    claims: valid,
    name_typ: typeof name_typ === 'string' ? name_typ : undefined,
    role_typ: typeof role_typ === 'string' ? role_typ : undefined,
  };
}

export type PersonCheck =
  | { allowed: true; person?: Person }
  /** Nobody signed in: a browser is sent to sign in at this path. */
  | { allowed: false; signIn: string };

/**
 * The human routes under App Service built-in authentication (docs/design.md, "Who may ask"): the
 * platform signs people in and passes `X-MS-CLIENT-PRINCIPAL`. The header is believed only when
 * `WEBSITE_AUTH_ENABLED` is `True` — without the platform in front, anyone could send it. The
 * principal's tenant (`tid`) must be `BROKER_TENANT_ID`, and it must hold `ADMIN_ROLE`.
 */
export class PersonAuth {
  constructor(private readonly settings: AdminAuthSettings) {}

  /**
   * Allowed (with the person under `easyauth`), or where a browser signs in. A signed-in person of
   * another tenant, or without the role, is 403 `forbidden`.
   */
  check(headers: { get(name: string): string | null }, pathAndQuery: string): PersonCheck {
    const settings = this.settings;
    if (settings.mode === 'key') return { allowed: true };
    const header = settings.platformEnabled ? headers.get(PRINCIPAL_HEADER) : null;
    const principal = header ? decodePrincipal(header) : undefined;
    if (!principal) {
      return {
        allowed: false,
        signIn: `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(pathAndQuery)}`,
      };
    }
    const values = (types: string[]) =>
      principal.claims.filter((c) => types.includes(c.typ)).map((c) => c.val);
    const roles = values([...(principal.role_typ ? [principal.role_typ] : []), ...ROLE_CLAIMS]);
    const name = values([principal.name_typ ?? 'name', 'preferred_username', 'name'])[0];
    const id = values(OID_CLAIMS)[0];
    // A principal of another tenant (a guest's home tenant token, a multi-tenant registration) is
    // never one of the broker's people, whatever roles it carries. Absent counts as another tenant.
    const tenants = values(TENANT_CLAIMS).map((t) => t.toLowerCase());
    if (tenants.length === 0 || tenants.some((t) => t !== settings.tenantId)) {
      throw new BrokerError(
        'forbidden',
        `You are signed in${name ? ` as ${name}` : ''}, but not in the broker's tenant. Sign in with an account of the organisation that runs the broker.`,
      );
    }
    if (!roles.includes(settings.role)) {
      throw new BrokerError(
        'forbidden',
        `You are signed in${name ? ` as ${name}` : ''}, but without the app role ${settings.role} on the broker's app registration. An admin assigns it under Enterprise applications → Users and groups.`,
      );
    }
    return { allowed: true, person: { name, id } };
  }
}

/** The same refusal for clients that cannot follow a sign-in redirect. */
export function signInRequired(): BrokerError {
  return new BrokerError(
    'unauthorized',
    'Sign in first: this page is for people signed in to the broker (App Service authentication).',
    { challenge: 'Bearer' },
  );
}

import { errors, type JWTPayload, jwtVerify } from 'jose';
import type { Clock } from '../clock.js';
import type { CallerAuthSettings } from '../config/settings.js';
import { BrokerError } from '../errors.js';
import { TenantKeys, type TenantKeysOptions } from './tenant-keys.js';

/** The app role a caller's token must carry (the broker's app registration defines it). */
export const TOKEN_REQUEST_ROLE = 'Token.Request';
/** Entra's clocks and ours may differ; docs/design.md ("Who may ask") allows five minutes either way. */
const CLOCK_SKEW_S = 300;
/** App tokens are 1-2 KB (user tokens with many groups reach 5-6); anything larger is refused before it is parsed. */
const MAX_TOKEN_CHARS = 8192;

/** Who called, as the audit log and the status page name it. */
export interface Caller {
  /** The connection's name for it, or `function-key`. */
  name: string;
  /** The caller's `oid` (service principal object id); absent for the function key. */
  id?: string;
}

/** A service's validated app token: who it is and its app roles. */
export interface AppIdentity {
  oid: string;
  roles: string[];
  /** `app_displayname`, else `azp` / `appid`. */
  name?: string;
}

/** How the tenant's keys are fetched: at most once per `cooldownMs` (default 30 s), failures included. */
export type KeySetOptions = TenantKeysOptions;

/** What a connection says about its callers. */
export interface CallerPolicy {
  id: string;
  callers?: { name: string; objectId: string }[];
}

const BEARER_CHALLENGE = 'Bearer';

function unauthorized(detail: string): BrokerError {
  return new BrokerError('unauthorized', detail, { challenge: BEARER_CHALLENGE });
}

/** Which check failed, in words; nothing of the token itself is echoed. */
function whyRefused(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'the token is not valid yet';
    if (err.claim === 'iss') return "the token's issuer is not this tenant";
    if (err.claim === 'aud') return "the token's audience is not the broker";
    return `the token's ${err.claim} claim is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is not signed with RS256';
  if (err instanceof errors.JWKSNoMatchingKey) return "the token's signing key is not one of the tenant's";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof errors.JWKSMultipleMatchingKeys) return "the token's signing key is ambiguous";
  return 'the token is malformed';
}

/**
 * Validates the Entra access token a calling service presents (docs/design.md, "Who may ask"): RS256
 * against the tenant's published keys (`TenantKeys`: cached, fetched at most every 30 s, failures
 * included), `iss` v2 or v1 of the tenant, `aud` the broker's app, `tid`, `exp`/`nbf` with 5 minutes
 * of skew, an app token (no `scp`; `idtyp` = `app` when present; `oid` = `sub`) holding the role
 * `Token.Request`; then its `oid` must be among the connection's `callers`.
 */
export class CallerVerifier {
  private readonly keys: TenantKeys;
  private readonly issuers: string[];

  constructor(
    private readonly settings: Extract<CallerAuthSettings, { mode: 'entra' }>,
    private readonly clock: Clock,
    options: KeySetOptions = {},
  ) {
    const { authority, tenantId } = settings;
    this.keys = new TenantKeys(`${authority}/${tenantId}/discovery/v2.0/keys`, clock, options);
    this.issuers = [`${authority}/${tenantId}/v2.0`, `https://sts.windows.net/${tenantId}/`];
  }

  /**
   * The caller, or 401 `unauthorized` (no or bad token) / 403 `caller_not_allowed`. The connection is
   * looked up only once the token is good, so nobody unauthenticated learns which connections exist.
   */
  async verify(
    authorization: string | null,
    connectionOf: () => CallerPolicy | Promise<CallerPolicy>,
  ): Promise<Caller> {
    const { oid, roles } = await this.authenticate(authorization);
    return this.admit(oid, roles, await connectionOf());
  }

  /**
   * The calling service's app token checked as every caller's is (signature, issuer, audience,
   * tenant, lifetime, app token): its `oid`, app roles and name. 401 `unauthorized` otherwise. The
   * admin gate uses it too, with the admin role instead of a connection's `callers`.
   */
  async authenticate(authorization: string | null): Promise<AppIdentity> {
    const token = /^Bearer +(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
    if (!token) {
      throw unauthorized(
        'This route needs an Entra access token of the calling service as "Authorization: Bearer …" (its managed identity, for the broker\'s app).',
      );
    }
    if (token.length > MAX_TOKEN_CHARS)
      throw unauthorized('The bearer token is refused: it is far too long.');
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.keys.getKey, {
        algorithms: ['RS256'],
        issuer: this.issuers,
        audience: this.settings.audiences,
        clockTolerance: CLOCK_SKEW_S,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp', 'iss', 'aud'],
      }));
    } catch (err) {
      // The keys could not be had (503 with Retry-After): an outage, not the caller's fault.
      if (err instanceof BrokerError) throw err;
      throw unauthorized(`The bearer token is refused: ${whyRefused(err)}.`);
    }
    if (String(claims.tid ?? '').toLowerCase() !== this.settings.tenantId) {
      throw unauthorized("The bearer token is refused: it is not from the broker's tenant.");
    }
    if (claims.scp !== undefined) {
      throw unauthorized(
        "The bearer token is refused: it is a user's (delegated) token; a service calls with its own app token.",
      );
    }
    // An ID token (App Service sign-in: `aud` the broker, v2 issuer, `tid`, `oid`, no `scp`) passes
    // every check above; an app token is told apart by `idtyp` (when the app asks for it) and by its
    // `sub`, which is the service principal's `oid`, while an ID token's `sub` is pairwise.
    if (claims.idtyp !== undefined && claims.idtyp !== 'app') {
      throw unauthorized("The bearer token is refused: it is not an app token (idtyp is not 'app').");
    }
    const oid = typeof claims.oid === 'string' ? claims.oid.toLowerCase() : undefined;
    if (!oid) throw unauthorized('The bearer token is refused: it names no caller (oid).');
    if (typeof claims.sub !== 'string' || claims.sub.toLowerCase() !== oid) {
      throw unauthorized(
        "The bearer token is refused: it is not an app token (its sub is not its oid); a service calls with its own app token, not a sign-in's ID token.",
      );
    }
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [];
    const name = [claims.app_displayname, claims.azp, claims.appid].find((v) => typeof v === 'string');
    return name === undefined ? { oid, roles } : { oid, roles, name: String(name) };
  }

  private admit(oid: string, roles: string[], connection: CallerPolicy): Caller {
    const listed = connection.callers?.find((c) => c.objectId.toLowerCase() === oid);
    if (!listed) {
      throw new BrokerError(
        'caller_not_allowed',
        `The calling service (object id ${oid}) is not among the callers of connection "${connection.id}". An operator adds it to the connection's "callers".`,
        { connectionId: connection.id },
      );
    }
    if (!roles.includes(TOKEN_REQUEST_ROLE)) {
      throw new BrokerError(
        'caller_not_allowed',
        `The calling service "${listed.name}" lacks the app role ${TOKEN_REQUEST_ROLE} on the broker's app registration. An admin assigns it.`,
        { connectionId: connection.id },
      );
    }
    return { name: listed.name, id: oid };
  }
}

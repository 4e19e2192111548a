import { createRemoteJWKSet, customFetch, errors, type JWTPayload, jwtVerify } from 'jose';
import type { Clock } from '../clock.js';
import type { CallerAuthSettings } from '../config/settings.js';
import { BrokerError } from '../errors.js';

/** The app role a caller's token must carry (the broker's app registration defines it). */
export const TOKEN_REQUEST_ROLE = 'Token.Request';
/** Entra's clocks and ours may differ; DESIGN.md allows five minutes either way. */
const CLOCK_SKEW_S = 300;
/** An unknown `kid` refetches the keys at most this often: a key rollover works, a flood of forged kids does not reach Entra. */
const JWKS_COOLDOWN_MS = 30_000;
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

export interface KeySetOptions {
  fetch?: typeof fetch;
  /** Default 30 s. */
  cooldownMs?: number;
}

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

/** The key set could not be had (down, slow, not JSON): an outage, not the caller's fault. */
function keysUnavailable(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return (
    err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err.code === 'ERR_JOSE_GENERIC'
  );
}

/**
 * Validates the Entra access token a calling service presents (DESIGN.md, "Who may ask"): RS256
 * against the tenant's published keys (jose's remote key set: cached, refetched on an unknown `kid`
 * at most every 30 s), `iss` v2 or v1 of the tenant, `aud` the broker's app, `tid`, `exp`/`nbf` with
 * 5 minutes of skew, an app token (no `scp`) holding the role `Token.Request`; then its `oid` must be
 * among the connection's `callers`.
 */
export class CallerVerifier {
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;
  private readonly issuers: string[];

  constructor(
    private readonly settings: Extract<CallerAuthSettings, { mode: 'entra' }>,
    private readonly clock: Clock,
    options: KeySetOptions = {},
  ) {
    const { authority, tenantId } = settings;
    this.keys = createRemoteJWKSet(new URL(`${authority}/${tenantId}/discovery/v2.0/keys`), {
      cooldownDuration: options.cooldownMs ?? JWKS_COOLDOWN_MS,
      timeoutDuration: 5000,
      [customFetch]: options.fetch ?? globalThis.fetch,
    });
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
      ({ payload: claims } = await jwtVerify(token, this.keys, {
        algorithms: ['RS256'],
        issuer: this.issuers,
        audience: this.settings.audiences,
        clockTolerance: CLOCK_SKEW_S,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp', 'iss', 'aud'],
      }));
    } catch (err) {
      if (keysUnavailable(err)) {
        throw new BrokerError(
          'upstream_unavailable',
          "The tenant's signing keys could not be fetched, so no caller can be verified now. Try again shortly.",
          { retryAfter: 5, cause: err },
        );
      }
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
    const oid = typeof claims.oid === 'string' ? claims.oid.toLowerCase() : undefined;
    if (!oid) throw unauthorized('The bearer token is refused: it names no caller (oid).');
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

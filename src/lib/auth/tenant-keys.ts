import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import * as z from 'zod';
import type { Clock } from '../clock.js';
import { BrokerError } from '../errors.js';
import { readBoundedText } from '../oauth/http.js';
import { parseJson } from '../oauth/json.js';

/** Default pause between two fetches of the key set, whether the last one worked or not. */
export const KEYS_COOLDOWN_MS = 30_000;
/** Keys are re-read this long after a good fetch even without an unknown `kid` (jose's default, 10 min). */
const KEYS_MAX_AGE_MS = 10 * 60_000;
const KEYS_TIMEOUT_MS = 5000;

export interface TenantKeysOptions {
  fetch?: typeof fetch;
  /** Default 30 s; tests of a rollover set 0. */
  cooldownMs?: number;
}

/** RFC 7517 §5: a JWK Set. Entra's has a handful of RSA keys; an empty one cannot be the tenant's. */
const keySetSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

type GetKeyArgs = Parameters<JWTVerifyGetKey>;

/**
 * The tenant's published signing keys (`{authority}/{tenant}/discovery/v2.0/keys`), for `jwtVerify`.
 *
 * Why not jose's `createRemoteJWKSet`: it stamps its cooldown only when a fetch succeeds, so while
 * Entra's key endpoint fails, every request with a parseable token fetches again (20 requests, 20
 * fetches), and once its cache is stale it refetches before looking at a known key, so a token whose
 * key is known but whose signature is wrong got 503 instead of 401. Here every attempt, failed or
 * not, starts the cooldown (on the injected clock); a known key keeps verifying while the endpoint
 * is down (a key Entra withdrew is trusted until the next good fetch: availability over a window
 * that Entra's own 24-hour rollover guidance already allows); an unknown key while the keys cannot be
 * fetched is 503 `upstream_unavailable` with `Retry-After` = the rest of the cooldown. The body is
 * read through the same 1 MiB cap as every other provider answer.
 */
export class TenantKeys {
  private local?: JWTVerifyGetKey;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private lastAttemptFailed = false;
  private inFlight?: Promise<void>;
  private readonly fetchFn: typeof fetch;
  private readonly cooldownMs: number;

  constructor(
    private readonly url: string,
    private readonly clock: Clock,
    options: TenantKeysOptions = {},
  ) {
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.cooldownMs = options.cooldownMs ?? KEYS_COOLDOWN_MS;
  }

  /** The key for a token's header, as `jwtVerify` asks for it. */
  readonly getKey = async (...[header, token]: GetKeyArgs) => {
    if (!this.local || this.clock.now() - this.fetchedAt >= KEYS_MAX_AGE_MS) await this.refresh();
    const local = this.local;
    if (!local) throw this.unavailable();
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // An unknown kid: a rollover Entra has just published, or a forgery. Refetch, within the cooldown.
      await this.refresh();
      if (this.lastAttemptFailed) throw this.unavailable();
      if (this.local === local) throw err;
      return this.local!(header, token);
    }
  };

  /** Fetches the set unless an attempt is running (joined) or the last one began less than the cooldown ago. */
  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.clock.now() - this.attemptedAt < this.cooldownMs) return Promise.resolve();
    this.attemptedAt = this.clock.now();
    this.inFlight = this.fetchKeys().then(
      (local) => {
        this.local = local;
        this.fetchedAt = this.clock.now();
        this.lastAttemptFailed = false;
      },
      () => {
        this.lastAttemptFailed = true;
      },
    );
    return this.inFlight.finally(() => {
      this.inFlight = undefined;
    });
  }

  private async fetchKeys(): Promise<JWTVerifyGetKey> {
    const res = await this.fetchFn(this.url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(KEYS_TIMEOUT_MS),
    });
    const text = await readBoundedText(res);
    if (!res.ok) throw new Error(`the key set answered HTTP ${res.status}`);
    const parsed = keySetSchema.safeParse(parseJson(text));
    if (!parsed.success) throw new Error('the key set is not a JWK Set');
    return createLocalJWKSet(parsed.data as JSONWebKeySet);
  }

  private unavailable(): BrokerError {
    const left = this.attemptedAt + this.cooldownMs - this.clock.now();
    return new BrokerError(
      'upstream_unavailable',
      "The tenant's signing keys could not be fetched, so this caller cannot be verified now. Try again shortly.",
      { retryAfter: Math.max(1, Math.ceil(left / 1000)) },
    );
  }
}

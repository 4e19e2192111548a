import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { errorFromAnswer, readTokenAnswer, type TokenAnswer } from './answer.js';
import { BrokerError } from './errors.js';
import { isOwn, normalizeScopes, ownScopeSet } from './scopes.js';

/** What `GetTokenOptions.abortSignal` is (`@azure/abort-controller`'s `AbortSignalLike`). */
type AbortSignalLike = NonNullable<GetTokenOptions['abortSignal']>;

export interface BrokerRetryOptions {
  /** Longest total wait for `upstream_unavailable` retries (following `Retry-After`); default 30 000 ms, 0 = no retry. */
  maxWaitMs?: number;
  /** How long one request may take, body included; default 10 000 ms. */
  attemptTimeoutMs?: number;
}

export interface BrokerCredentialOptions {
  /** The broker's base URL, e.g. `https://contoso-broker.azurewebsites.net` (a trailing `/api` is fine). */
  url: string;
  /** The connection id (`/api/token?connection=`). */
  connection: string;
  /** The function key, sent as `x-functions-key` (`CALLER_AUTH=key`). */
  functionKey?: string;
  /** A credential for the broker's API (`CALLER_AUTH=entra`), e.g. `ManagedIdentityCredential`; sent as Bearer. */
  credential?: TokenCredential;
  /** What `credential` is asked for, e.g. `api://broker/.default`; required with `credential`. */
  apiScope?: string;
  retry?: BrokerRetryOptions;
}

/** Served until this long before expiry, then asked again (DESIGN: 5 minutes). */
const REFRESH_MARGIN_MS = 5 * 60_000;

interface Entry {
  answer: TokenAnswer;
  /** The caller's view, built once so a cache hit allocates nothing. */
  accessToken: AccessToken;
}

/**
 * A `TokenCredential` over the broker's `GET /api/token`: give it to any Azure SDK client or the
 * Microsoft Graph SDK as you would `DefaultAzureCredential`. Tokens are cached until 5 minutes before
 * they expire, one request is in flight per scope set, and `upstream_unavailable` is retried after
 * `Retry-After` within `retry.maxWaitMs`; every other failure is a `BrokerError`.
 */
export class BrokerCredential implements TokenCredential {
  private readonly tokenUrl: string;
  private readonly connection: string;
  private readonly functionKey: string | undefined;
  private readonly apiCredential: TokenCredential | undefined;
  private readonly apiScope: string | undefined;
  private readonly maxWaitMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly cache = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Entry>>();
  /** Scopes as a caller spelled them (joined) → cache key. */
  private readonly keyOf = new Map<string, string>();
  /** The connection's own scopes, once an answer without `scope=` reported them. */
  private own: Set<string> | undefined;

  constructor(options: BrokerCredentialOptions) {
    if (!options || typeof options.url !== 'string' || !/^https?:\/\//i.test(options.url)) {
      throw new TypeError('BrokerCredential: `url` must be the broker’s http(s) base URL.');
    }
    if (typeof options.connection !== 'string' || options.connection.length === 0) {
      throw new TypeError('BrokerCredential: `connection` is required.');
    }
    if (options.credential && !options.apiScope) {
      throw new TypeError(
        'BrokerCredential: `apiScope` is required with `credential` (e.g. api://broker/.default).',
      );
    }
    const base = options.url.replace(/\/+$/, '').replace(/\/api$/, '');
    this.tokenUrl = `${base}/api/token`;
    this.connection = options.connection;
    this.functionKey = options.functionKey;
    this.apiCredential = options.credential;
    this.apiScope = options.apiScope;
    this.maxWaitMs = Math.max(0, options.retry?.maxWaitMs ?? 30_000);
    this.attemptTimeoutMs = Math.max(1, options.retry?.attemptTimeoutMs ?? 10_000);
  }

  /** A token for `scopes` (a string or an array); the connection's own when they match (see scopes.ts). */
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    scopes ??= [];
    // The hot path: a cached token costs two map lookups and a clock read, no I/O and no parsing.
    const raw = typeof scopes === 'string' ? scopes : scopes.length === 1 ? scopes[0]! : scopes.join(' ');
    const key = this.keyOf.get(raw);
    if (key !== undefined) {
      const hit = this.fresh(key, false);
      if (hit) return Promise.resolve(hit.accessToken);
    }
    return this.entry(normalizeScopes(scopes), false, options?.abortSignal, raw).then((e) => e.accessToken);
  }

  /**
   * The base64 SASL XOAUTH2 string for IMAP/POP/SMTP. With `user`, built here from the token (app-only
   * connections name the mailbox this way); without, the broker builds it for the connected account.
   * `scopes` default to the connection's own.
   */
  async xoauth2(options: { user?: string; scopes?: string | string[]; abortSignal?: AbortSignalLike } = {}) {
    const scopes = normalizeScopes(options.scopes ?? []);
    if (options.user !== undefined) {
      const { answer } = await this.entry(scopes, false, options.abortSignal);
      return Buffer.from(`user=${options.user}\x01auth=Bearer ${answer.token}\x01\x01`).toString('base64');
    }
    const { answer } = await this.entry(scopes, true, options.abortSignal);
    if (answer.xoauth2 === undefined) {
      throw new BrokerError(
        'invalid_response',
        'The broker answered format=xoauth2 without an xoauth2 string.',
        {
          status: 200,
        },
      );
    }
    return answer.xoauth2;
  }

  private async entry(
    asked: string[],
    xoauth2: boolean,
    signal: AbortSignalLike | undefined,
    raw?: string,
  ): Promise<Entry> {
    const key = this.own && isOwn(asked, this.own) ? '' : asked.sort().join(' ');
    // Remember how this spelling of the scopes maps to a cache key (once the own scopes are known,
    // the mapping cannot change); bounded, since callers may spell scopes in endless ways.
    if (raw !== undefined && this.own) {
      if (this.keyOf.size >= 256) this.keyOf.clear();
      this.keyOf.set(raw, key);
    }
    const hit = this.fresh(key, xoauth2);
    if (hit) return hit;
    if (signal?.aborted) throw aborted(signal);
    if (key !== '' && !this.own) {
      // Which scopes are the connection's own is known only from an answer without `scope=`.
      await this.flight('', false, signal);
      if (isOwn(asked, this.own!)) return this.entry([], xoauth2, signal);
    }
    return this.flight(key, xoauth2, signal);
  }

  private fresh(key: string, xoauth2: boolean): Entry | undefined {
    const entry = this.cache.get(key);
    if (!entry || entry.answer.expiresOnTimestamp - REFRESH_MARGIN_MS <= Date.now()) return undefined;
    return xoauth2 && entry.answer.xoauth2 === undefined ? undefined : entry;
  }

  /** One request per (scope set, format) at a time; each caller may give up on it alone. */
  private flight(key: string, xoauth2: boolean, signal: AbortSignalLike | undefined): Promise<Entry> {
    const flightKey = xoauth2 ? `${key}#xoauth2` : key;
    let shared = this.inFlight.get(flightKey);
    if (!shared) {
      shared = this.fetchWithRetry(key, xoauth2).finally(() => this.inFlight.delete(flightKey));
      // Nobody may be left to await it (every caller aborted): never an unhandled rejection.
      shared.catch(() => {});
      this.inFlight.set(flightKey, shared);
    }
    return signal ? raceAbort(shared, signal) : shared;
  }

  private async fetchWithRetry(key: string, xoauth2: boolean): Promise<Entry> {
    const started = Date.now();
    for (;;) {
      try {
        const answer = await this.request(key, xoauth2);
        if (key === '') this.own = ownScopeSet(answer.scope);
        const entry: Entry = {
          answer,
          accessToken: {
            token: answer.token,
            expiresOnTimestamp: answer.expiresOnTimestamp,
            // SDK auth policies that cache on their own ask again when this cache would.
            refreshAfterTimestamp: answer.expiresOnTimestamp - REFRESH_MARGIN_MS,
            tokenType: 'Bearer',
          },
        };
        this.cache.set(key, entry);
        return entry;
      } catch (err) {
        if (
          !(err instanceof BrokerError) ||
          err.code !== 'upstream_unavailable' ||
          err.retryAfter === undefined
        ) {
          throw err;
        }
        // At least a second: a `Retry-After: 0` loop would hammer a broker that is already down.
        const waitMs = Math.max(1, err.retryAfter) * 1000;
        if (Date.now() - started + waitMs > this.maxWaitMs) throw err;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  /** One `GET /api/token`, bounded by `attemptTimeoutMs` from the first byte sent to the last byte read. */
  private async request(key: string, xoauth2: boolean): Promise<TokenAnswer> {
    const url = new URL(this.tokenUrl);
    url.searchParams.set('connection', this.connection);
    if (key !== '') url.searchParams.set('scope', key);
    if (xoauth2) url.searchParams.set('format', 'xoauth2');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiCredential) {
      let apiToken: AccessToken | null;
      try {
        apiToken = await this.apiCredential.getToken(this.apiScope!, {
          abortSignal: AbortSignal.timeout(this.attemptTimeoutMs),
        });
      } catch (cause) {
        throw new BrokerError(
          'caller_credential_failed',
          `The credential for the broker's API could not get a token for ${this.apiScope}.`,
          { status: 0, cause },
        );
      }
      if (!apiToken) {
        throw new BrokerError(
          'caller_credential_failed',
          `The credential for the broker's API returned no token for ${this.apiScope}.`,
          { status: 0 },
        );
      }
      headers.authorization = `Bearer ${apiToken.token}`;
    } else if (this.functionKey) {
      headers['x-functions-key'] = this.functionKey;
    }
    const timeout = AbortSignal.timeout(this.attemptTimeoutMs);
    const where = `${this.tokenUrl}?connection=${this.connection}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: timeout, redirect: 'manual' });
    } catch (cause) {
      if (timeout.aborted) throw timedOut(where, this.attemptTimeoutMs, cause);
      const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause;
      const code = (reason as { code?: unknown } | undefined)?.code;
      throw new BrokerError(
        'broker_unreachable',
        `The broker at ${where} could not be reached${typeof code === 'string' ? ` (${code})` : ''}.`,
        { status: 0, cause },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (cause) {
      if (timeout.aborted) throw timedOut(where, this.attemptTimeoutMs, cause);
      throw new BrokerError(
        'invalid_response',
        `The broker at ${where} answered HTTP ${res.status} but broke off before the end of the body (truncated).`,
        { status: res.status, cause },
      );
    }
    const status = res.status;
    const resHeaders = res.headers;
    const now = Date.now();
    if (status === 200) return readTokenAnswer(status, resHeaders, text, now);
    throw errorFromAnswer(status, resHeaders, text, now);
  }
}

function timedOut(where: string, ms: number, cause: unknown): BrokerError {
  return new BrokerError(
    'broker_timeout',
    `The broker at ${where} did not answer completely within ${ms} ms.`,
    {
      status: 0,
      cause,
    },
  );
}

function aborted(signal: AbortSignalLike): BrokerError {
  return new BrokerError('aborted', 'The token request was aborted by the caller.', {
    status: 0,
    cause: (signal as { reason?: unknown }).reason,
  });
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignalLike): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

import type { Connection } from '../../src/lib/config/connections.js';
import { BrokerError } from '../../src/lib/errors.js';
import type {
  AccountInfo,
  AuthorizeParams,
  CodeExchangeParams,
  DeviceAuthorization,
  DevicePollResult,
  ProviderDialect,
  TokenSet,
} from '../../src/lib/providers/provider.js';

/** A refresh as the provider received it. */
export interface RefreshCall {
  connection: string;
  refreshToken: string;
  scopes?: string[];
}

/** What the next refresh (or code exchange) of a connection answers: tokens (merged over fresh ones) or an error. */
export type Answer = Partial<TokenSet> | BrokerError;

/** What the next device poll of a connection answers. */
export type PollAnswer = DevicePollResult | BrokerError;

/** The device code the fake hands out: secret, so tests look for it where it must not be. */
export const DEVICE_CODE = 'DEVICE-CODE-SECRET-0123456789';

/**
 * A provider behind the `ProviderDialect` port, for service tests. Like Entra it rotates refresh
 * tokens on every use and detects reuse: a refresh token presented a second time revokes the grant
 * (`consent_required`) and is listed in `reused`. Every call is recorded; answers can be scripted per
 * connection (`answer`, `answerPoll`), and `hold()` keeps refreshes in flight until released, so a
 * test can count how many run at once (`maxInFlight`).
 */
export class FakeProvider {
  readonly refreshes: RefreshCall[] = [];
  readonly exchanges: (CodeExchangeParams & { connection: string })[] = [];
  readonly authorizations: (AuthorizeParams & { connection: string })[] = [];
  readonly deviceStarts: string[] = [];
  readonly devicePolls: { connection: string; deviceCode: string }[] = [];
  /** Nonces `accountOf` was asked to check. */
  readonly nonces: (string | undefined)[] = [];
  /** Refresh tokens presented more than once (each one revoked a grant). */
  readonly reused: string[] = [];
  /** Who `accountOf` says consented, unless a token set names its own (`idToken: 'account:…'`). */
  account: AccountInfo = { account: 'ana@contoso.com', tenant: 'tenant-1' };
  /** Seconds each minted access token lives. */
  expiresIn = 3600;
  /** Seconds the device code lives, and the poll interval it asks for. */
  device = { expiresIn: 900, interval: 5 };
  /** The dialect's fixed grant lifetime (ACS-like), when set. */
  lifetimeMs?: number;
  inFlight = 0;
  maxInFlight = 0;

  private readonly answers = new Map<string, Answer[]>();
  private readonly pollAnswers = new Map<string, PollAnswer[]>();
  private readonly redeemed = new Set<string>();
  private minted = 0;
  private gate?: Promise<void>;

  /** Queues answers for the next refreshes/code exchanges of `connectionId`, in order. */
  answer(connectionId: string, ...answers: Answer[]): void {
    this.answers.set(connectionId, [...(this.answers.get(connectionId) ?? []), ...answers]);
  }

  /** Queues answers for the next device polls of `connectionId`, in order (default: pending). */
  answerPoll(connectionId: string, ...answers: PollAnswer[]): void {
    this.pollAnswers.set(connectionId, [...(this.pollAnswers.get(connectionId) ?? []), ...answers]);
  }

  /** Refreshes from now on wait until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.gate = undefined;
      release();
    };
  }

  /** Fresh tokens, as a token endpoint would mint them. */
  mint(): TokenSet {
    const n = ++this.minted;
    return {
      accessToken: `at-${n}`,
      tokenType: 'Bearer',
      expiresIn: this.expiresIn,
      refreshToken: `rt-${n}`,
      scope: 'offline_access openid profile Mail.Read',
    };
  }

  /** The `DialectLookup` a `GrantService` / `ConsentService` takes. */
  readonly lookup = (connection: Connection): ProviderDialect => {
    const id = connection.id;
    const dialect: ProviderDialect = {
      defaultScopes: [...connection.scopes, 'offline_access'],
      authorizeUrl: async (params) => {
        this.authorizations.push({ connection: id, ...params });
        const url = new URL('https://login.example.com/authorize');
        url.searchParams.set('state', params.state);
        url.searchParams.set('nonce', params.nonce);
        url.searchParams.set('code_challenge', params.codeChallenge);
        url.searchParams.set('code_challenge_method', 'S256');
        url.searchParams.set('redirect_uri', params.redirectUri);
        return url.toString();
      },
      exchangeCode: async (params) => {
        this.exchanges.push({ connection: id, ...params });
        return this.next(id);
      },
      refresh: async (params) => {
        this.refreshes.push({ connection: id, refreshToken: params.refreshToken, scopes: params.scopes });
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try {
          await this.gate;
          if (this.redeemed.has(params.refreshToken)) {
            this.reused.push(params.refreshToken);
            throw new BrokerError('consent_required', 'The refresh token was already used; grant revoked.', {
              connectionId: id,
              providerError: { error: 'invalid_grant', aadsts: 70000 },
            });
          }
          const tokens = this.next(id);
          // Only a successful redemption uses the token up; a refused client or scope does not.
          this.redeemed.add(params.refreshToken);
          return tokens;
        } finally {
          this.inFlight--;
        }
      },
      accountOf: async (tokens, nonce) => {
        this.nonces.push(nonce);
        const named = tokens.idToken?.startsWith('account:')
          ? tokens.idToken.slice('account:'.length)
          : undefined;
        return named ? { ...this.account, account: named } : { ...this.account };
      },
      startDeviceAuthorization: async (): Promise<DeviceAuthorization> => {
        this.deviceStarts.push(id);
        return {
          deviceCode: DEVICE_CODE,
          userCode: 'ABCD-EFGH',
          verificationUri: 'https://login.example.com/device',
          expiresIn: this.device.expiresIn,
          interval: this.device.interval,
        };
      },
      pollDeviceAuthorization: async (deviceCode) => {
        this.devicePolls.push({ connection: id, deviceCode });
        const answer = this.pollAnswers.get(id)?.shift() ?? { status: 'pending' };
        if (answer instanceof BrokerError) throw answer;
        return answer;
      },
      hardExpiry: (consentedAtMs) =>
        this.lifetimeMs === undefined ? undefined : new Date(consentedAtMs + this.lifetimeMs),
    };
    return dialect;
  };

  private next(connectionId: string): TokenSet {
    const answer = this.answers.get(connectionId)?.shift();
    if (answer instanceof BrokerError) throw answer;
    return { ...this.mint(), ...answer };
  }
}

/** A provider error as a dialect classifies it. */
export function providerError(
  code: 'consent_required' | 'client_misconfigured' | 'upstream_unavailable' | 'invalid_request',
  error: string,
  aadsts?: number,
): BrokerError {
  return new BrokerError(code, `The provider answered ${error}.`, {
    providerError: { error, aadsts },
    retryAfter: code === 'upstream_unavailable' ? 5 : undefined,
  });
}

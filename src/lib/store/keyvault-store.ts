import type { TokenCredential } from '@azure/identity';
import {
  type SecretProperties as KvSecretProperties,
  SecretClient,
  type SecretClientOptions,
} from '@azure/keyvault-secrets';
import { BrokerError, KeyVaultAccessError, StoreError, StoreThrottledError } from '../errors.js';
import { DEFAULT_RETRY_AFTER_S, parseRetryAfter } from '../retry-after.js';
import { checkDate, checkName, checkTags } from './limits.js';
import type {
  SecretProperties,
  SecretPropertiesUpdate,
  SecretStore,
  SetSecretOptions,
  StoredSecret,
} from './secret-store.js';
import { VaultPacer, type VaultPacerOptions, type VaultPacing } from './vault-pacer.js';

/**
 * The secret store on Azure Key Vault (`KEY_VAULT_URL`), through `@azure/keyvault-secrets`.
 *
 * Semantics match the embedded store: `rt-{id}` and client secrets are ordinary secrets, every
 * `setSecret` is a new version (so the vault's version history is the audit trail), tags obey Key
 * Vault's limits and are checked here before any call. A missing secret is `undefined`.
 *
 * Failures: 401/403 become a `KeyVaultAccessError` naming the vault and the role to grant; 429 and
 * 5xx are retried by the SDK's retry policy (which honours `Retry-After`), then, like timeouts and
 * network errors, become `upstream_unavailable` with a `retryAfter`. Every operation has a deadline:
 * a `Retry-After` that would overrun it fails at once with the vault's own `Retry-After`, so callers
 * are answered within seconds. No message ever carries a secret value, a token or the SDK's error
 * (whose request holds both); only status codes and the service's error codes.
 *
 * Key Vault differences handled here: reading the latest version of a secret whose latest version is
 * disabled answers 403 `SecretDisabled` (the embedded store answers the newest enabled one; so does this
 * store, with one extra list + get); a soft-deleted name cannot be set again (409
 * `ObjectIsDeletedButRecoverable`), so `setSecret` recovers it first, keeping its history;
 * `listSecrets` items carry no version id (Key Vault's list does not name it): `version` is ''.
 */

/** The Key Vault built-in role that lets the broker read, write and list secrets. */
export const KEY_VAULT_ROLE = 'Key Vault Secrets Officer';

export interface KeyVaultSecretStoreOptions extends SecretClientOptions {
  /** Time allowed to one HTTP attempt, ms (default 4000). */
  attemptTimeoutMs?: number;
  /** Time allowed to one store operation, SDK retries and token acquisition included, ms (default 8000). */
  deadlineMs?: number;
  /**
   * Paces this store's requests to stay inside the vault's service limits (`VaultPacer`); `false`
   * sends them as they come. Default: `DEFAULT_VAULT_PACING`.
   */
  pacing?: VaultPacerOptions | false;
}

/**
 * Half of Key Vault's documented limits for secrets, per vault and region in 10 seconds (4,000
 * transactions, of which 300 creates): the other half is left to other instances, the CLI and
 * whatever else shares the vault. docs/status-and-rotation.md, "Key Vault service limits", has the arithmetic.
 */
export const DEFAULT_VAULT_PACING: VaultPacing = { transactionsPer10s: 2000, writesPer10s: 150 };

type PipelinePolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];
type PipelineRequest = Parameters<PipelinePolicy['sendRequest']>[0];
type PipelineResponse = Awaited<ReturnType<PipelinePolicy['sendRequest']>>;

const VERSION = /^[0-9a-zA-Z]{1,64}$/;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 4000;
const DEFAULT_DEADLINE_MS = 8000;
const DEFAULT_RETRY = { maxRetries: 3, retryDelayInMs: 300, maxRetryDelayInMs: 2000 };

interface RestErrorLike {
  name: string;
  statusCode?: number;
  code?: string;
  response?: { headers: { get(name: string): string | undefined } };
  request?: object;
  details?: unknown;
}

function asRestError(err: unknown): RestErrorLike | undefined {
  return err instanceof Error && err.name === 'RestError' ? (err as unknown as RestErrorLike) : undefined;
}

/** The inner error code of an error body (`SecretDisabled`, `ForbiddenByRbac`…), if any. */
function innerCodeOfBody(text: string | null | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const code = (JSON.parse(text) as { error?: { innererror?: { code?: unknown } } })?.error?.innererror
      ?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** A short, safe token for messages: service and system error codes only, never free text. */
function safeCode(code: unknown): string | undefined {
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;
}

function retryAfterMs(headers: { get(name: string): string | undefined }): number | undefined {
  for (const [header, factor] of [
    ['retry-after-ms', 1],
    ['x-ms-retry-after-ms', 1],
    ['retry-after', 1000],
  ] as const) {
    const raw = headers.get(header);
    if (raw === undefined || raw === '') continue;
    if (header === 'retry-after') {
      // Delay-seconds or an HTTP date (RFC 9110 §10.2.3), read by the one parser.
      const seconds = parseRetryAfter(raw, Date.now());
      if (seconds !== undefined) return seconds * factor;
      continue;
    }
    const n = Number(raw);
    if (Number.isFinite(n) && n >= 0) return n * factor;
  }
  return undefined;
}

function toProperties(p: KvSecretProperties): SecretProperties {
  const props: SecretProperties = {
    name: p.name,
    version: p.version ?? '',
    enabled: p.enabled ?? true,
    tags: { ...p.tags },
    createdOn: p.createdOn ?? new Date(0),
    updatedOn: p.updatedOn ?? new Date(0),
  };
  if (p.expiresOn !== undefined) props.expiresOn = p.expiresOn;
  return props;
}

function oldestFirst(a: SecretProperties, b: SecretProperties): number {
  return a.createdOn.getTime() - b.createdOn.getTime();
}

export class KeyVaultSecretStore implements SecretStore {
  readonly kind = 'keyvault';
  /** The vault URL without a trailing slash, as shown in messages. */
  readonly vaultUrl: string;
  private readonly client: SecretClient;
  private readonly deadlineMs: number;
  private readonly innerCodes: WeakMap<object, string>;
  /** Shared by every call of this store, the rotation pass's and callers' alike; undefined when off. */
  readonly pacer?: VaultPacer;

  constructor(vaultUrl: string, credential: TokenCredential, options: KeyVaultSecretStoreOptions = {}) {
    const {
      attemptTimeoutMs = DEFAULT_ATTEMPT_TIMEOUT_MS,
      deadlineMs = DEFAULT_DEADLINE_MS,
      retryOptions,
      additionalPolicies = [],
      pacing = DEFAULT_VAULT_PACING,
      ...clientOptions
    } = options;
    const pacer = pacing === false ? undefined : new VaultPacer(pacing);
    this.pacer = pacer;
    // Once per request sent by the SDK (each list page is one), before the deadline starts: a wait
    // for the vault's budget is not the vault being slow. A new version counts as a write.
    const pace: PipelinePolicy = {
      name: 'brokerVaultPacing',
      async sendRequest(request, next) {
        await pacer?.take(request.method === 'PUT');
        return next(request);
      },
    };
    this.vaultUrl = vaultUrl.replace(/\/+$/, '');
    this.deadlineMs = deadlineMs;
    const deadlines = new WeakMap<PipelineRequest, number>();
    // The SDK drops the inner error code on some paths (list pages); keep it per request.
    const innerCodes = new WeakMap<object, string>();
    this.innerCodes = innerCodes;
    // Once per operation, before authentication: one deadline over token, attempts and retry waits.
    const deadline: PipelinePolicy = {
      name: 'brokerDeadline',
      sendRequest(request, next) {
        const signal = AbortSignal.timeout(deadlineMs);
        request.abortSignal = request.abortSignal
          ? AbortSignal.any([request.abortSignal as AbortSignal, signal])
          : signal;
        if (!request.timeout) request.timeout = attemptTimeoutMs;
        deadlines.set(request, Date.now() + deadlineMs);
        return next(request);
      },
    };
    // Once per attempt: keeps an error's inner code, and a Retry-After the deadline cannot wait for
    // ends the operation now (with the vault's Retry-After) instead of sleeping past the budget.
    const throttleGuard: PipelinePolicy = {
      name: 'brokerThrottleGuard',
      async sendRequest(request, next): Promise<PipelineResponse> {
        const response = await next(request);
        const inner = response.status >= 400 ? innerCodeOfBody(response.bodyAsText) : undefined;
        if (inner) innerCodes.set(request, inner);
        else innerCodes.delete(request);
        if (response.status === 429 || response.status === 503) {
          const wait = retryAfterMs(response.headers);
          const end = deadlines.get(request);
          if (wait !== undefined && end !== undefined && Date.now() + wait > end) {
            throw new StoreThrottledError(response.status, wait);
          }
        }
        return response;
      },
    };
    this.client = new SecretClient(this.vaultUrl, credential, {
      ...clientOptions,
      retryOptions: { ...DEFAULT_RETRY, ...retryOptions },
      additionalPolicies: [
        ...additionalPolicies,
        { policy: pace, position: 'perCall' },
        { policy: deadline, position: 'perCall' },
        { policy: throttleGuard, position: 'perRetry' },
      ],
    });
  }

  async getSecret(name: string, version?: string): Promise<StoredSecret | undefined> {
    const n = checkName(name);
    if (version !== undefined && !VERSION.test(version)) return undefined;
    try {
      const secret = await this.client.getSecret(n, version === undefined ? {} : { version });
      return { ...toProperties(secret.properties), value: secret.value ?? '' };
    } catch (err) {
      const rest = asRestError(err);
      if (rest?.statusCode === 404) return undefined;
      // Key Vault does not fall back from a disabled latest version; the port does.
      if (rest?.statusCode === 403 && this.innerCode(rest) === 'SecretDisabled') {
        return version === undefined ? this.latestEnabled(n) : undefined;
      }
      throw this.failure(err, `reading secret ${n}`);
    }
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretProperties> {
    const n = checkName(name);
    if (typeof value !== 'string') throw new StoreError('invalid', `secret ${n}: value must be a string`);
    const tags = checkTags(options.tags ?? {});
    const expiresOn = checkDate(options.expiresOn, 'expiresOn');
    const write = async () =>
      toProperties((await this.client.setSecret(n, value, { tags, expiresOn })).properties);
    try {
      return await write();
    } catch (err) {
      const rest = asRestError(err);
      if (rest?.statusCode !== 409 || this.innerCode(rest) !== 'ObjectIsDeletedButRecoverable') {
        throw this.failure(err, `writing secret ${n}`);
      }
    }
    // The name was soft-deleted: recover it (history kept), then write the new version.
    try {
      const poller = await this.client.beginRecoverDeletedSecret(n, { intervalInMs: 500 });
      await poller.pollUntilDone({ abortSignal: AbortSignal.timeout(this.deadlineMs) });
      return await write();
    } catch (err) {
      throw this.failure(err, `recovering deleted secret ${n}`);
    }
  }

  async updateSecretProperties(
    name: string,
    version: string,
    update: SecretPropertiesUpdate,
  ): Promise<SecretProperties> {
    const n = checkName(name);
    const tags = update.tags === undefined ? undefined : checkTags(update.tags);
    const expiresOn = checkDate(update.expiresOn, 'expiresOn');
    if (update.enabled !== undefined && typeof update.enabled !== 'boolean')
      throw new StoreError('invalid', 'enabled must be a boolean');
    const known = typeof version === 'string' && VERSION.test(version);
    if (!known) throw new StoreError('not_found', `secret ${n} has no such version`);
    try {
      return toProperties(
        await this.client.updateSecretProperties(n, version, { tags, expiresOn, enabled: update.enabled }),
      );
    } catch (err) {
      if (asRestError(err)?.statusCode === 404)
        throw new StoreError('not_found', `secret ${n} has no such version ${version}`);
      throw this.failure(err, `updating secret ${n}`);
    }
  }

  async listSecrets(): Promise<SecretProperties[]> {
    try {
      const out: SecretProperties[] = [];
      for await (const p of this.client.listPropertiesOfSecrets()) {
        // Secrets backing Key Vault certificates are not ours.
        if (p.managed) continue;
        out.push(toProperties(p));
      }
      return out.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
    } catch (err) {
      throw this.failure(err, 'listing secrets');
    }
  }

  async listVersions(name: string): Promise<SecretProperties[]> {
    const n = checkName(name);
    try {
      const out: SecretProperties[] = [];
      for await (const p of this.client.listPropertiesOfSecretVersions(n)) out.push(toProperties(p));
      // Key Vault lists versions in no particular order; its timestamps have one-second resolution.
      return out.sort(oldestFirst);
    } catch (err) {
      if (asRestError(err)?.statusCode === 404) return [];
      throw this.failure(err, `listing versions of secret ${n}`);
    }
  }

  /** Soft-deletes (recoverable for the vault's retention period); a missing secret is not an error. */
  async deleteSecret(name: string): Promise<void> {
    const n = checkName(name);
    try {
      const poller = await this.client.beginDeleteSecret(n, { intervalInMs: 500 });
      await poller.pollUntilDone({ abortSignal: AbortSignal.timeout(this.deadlineMs) });
    } catch (err) {
      if (asRestError(err)?.statusCode === 404) return;
      throw this.failure(err, `deleting secret ${n}`);
    }
  }

  /** The service's inner error code (`SecretDisabled`, `ForbiddenByRbac`, `ObjectIsDeletedButRecoverable`…). */
  private innerCode(err: RestErrorLike): string | undefined {
    const details = err.details as { error?: { innerError?: { code?: unknown } } } | undefined;
    const code = details?.error?.innerError?.code;
    if (typeof code === 'string') return code;
    return err.request ? this.innerCodes.get(err.request) : undefined;
  }

  private async latestEnabled(name: string): Promise<StoredSecret | undefined> {
    const enabled = (await this.listVersions(name)).filter((v) => v.enabled);
    const newest = enabled[enabled.length - 1];
    return newest ? this.getSecret(name, newest.version) : undefined;
  }

  /** Any failure as an error whose message names the vault, the operation and codes only. */
  private failure(err: unknown, what: string): Error {
    const vault = this.vaultUrl;
    if (err instanceof BrokerError) return err;
    if (err instanceof StoreThrottledError) {
      const seconds = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault ${vault} is throttling requests (${err.status}) while ${what}; retry after ${seconds} s.`,
        { retryAfter: seconds },
      );
    }
    if (err instanceof Error && err.name === 'AbortError') {
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault ${vault} did not answer in time while ${what}; retry shortly.`,
        { retryAfter: DEFAULT_RETRY_AFTER_S },
      );
    }
    const rest = asRestError(err);
    if (!rest) {
      if (
        err instanceof Error &&
        /^(CredentialUnavailable|Authentication|AggregateAuthentication)/.test(err.name)
      ) {
        return new KeyVaultAccessError(
          `No Azure credential could get a token for Key Vault ${vault} (${err.name}). In Azure, enable the Function App's managed identity (and set AZURE_CLIENT_ID for a user-assigned one); locally, run "az login". Then grant that identity the '${KEY_VAULT_ROLE}' role on the vault.`,
          vault,
        );
      }
      return new BrokerError('upstream_unavailable', `Key Vault ${vault} failed while ${what}.`, {
        retryAfter: DEFAULT_RETRY_AFTER_S,
      });
    }
    const status = rest.statusCode;
    const code = safeCode(this.innerCode(rest)) ?? safeCode(rest.code);
    const codeText = code ? `, ${code}` : '';
    if (status === 401 || status === 403) {
      if (code === 'ForbiddenByFirewall' || code === 'ForbiddenByConnection') {
        return new KeyVaultAccessError(
          `Key Vault ${vault} refused the broker's network address (${status}${codeText}) while ${what}. Allow the Function App's outbound addresses (or its virtual network) in the vault's firewall.`,
          vault,
          status,
        );
      }
      return new KeyVaultAccessError(
        `Key Vault ${vault} refused access (${status}${codeText}) while ${what}. Grant the broker's identity the '${KEY_VAULT_ROLE}' role on this vault (az role assignment create --role "${KEY_VAULT_ROLE}" --assignee <principal id> --scope <vault resource id>).`,
        vault,
        status,
      );
    }
    if (status === undefined) {
      const tls =
        code && /CERT|SSL|TLS|SIGNATURE|ISSUER/i.test(code)
          ? ' Check the vault URL and the trusted certificates.'
          : '';
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault ${vault} is unreachable (${code ?? 'network error'}) while ${what}.${tls}`,
        { retryAfter: DEFAULT_RETRY_AFTER_S },
      );
    }
    const waitMs = rest.response ? retryAfterMs(rest.response.headers) : undefined;
    const retryAfter = waitMs === undefined ? DEFAULT_RETRY_AFTER_S : Math.max(1, Math.ceil(waitMs / 1000));
    if (status === 429 || status === 408 || status >= 500) {
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault ${vault} answered ${status}${codeText} while ${what}, after retries; retry after ${retryAfter} s.`,
        { retryAfter },
      );
    }
    // 400, 409 and the like: a request the vault will never accept, a bug rather than an outage.
    return new StoreError('rejected', `Key Vault ${vault} rejected ${what} (${status}${codeText}).`);
  }
}

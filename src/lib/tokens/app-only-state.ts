import type { Failure, RemedyHint, RemedyKind } from '../errors.js';
import type { SecretStore } from '../store/secret-store.js';

/**
 * Where an app-only connection's state lives: a small record in the secret store named
 * `broker-app-{id}`, whose tags are the state and whose value is a fixed, non-secret marker. There
 * is no refresh token to keep (nothing `rt-` is ever written for these connections), but the status
 * must be the same on every instance and survive a restart, and the store is the one place every
 * instance shares: `/api/status` already reads every secret's tags in one list call, so this costs
 * that call nothing more. The `broker-` prefix is reserved, so no configured secret can collide.
 */
export interface AppOnlyState {
  /** Discriminates it from a delegated grant's tags wherever both travel together. */
  appOnly: true;
  /** `connected` once a token request succeeded; `not_connected` before (failures only so far). */
  status: 'connected' | 'not_connected';
  /** The last successful token request this record knows of (ISO-8601). */
  refreshedAt?: string;
  /** The first successful token request. */
  connectedAt?: string;
  /** The readable code of the last failed request (`invalid_client AADSTS7000215`); cleared by a success. */
  lastError?: string;
  /** That failure as its provider's table classified it (stored as tags, never parsed from `lastError`). */
  failure?: Pick<Failure, 'remedy' | 'reason' | 'hint'>;
}

/** The failure an app-only state carries: a refused client, by its stored classification. */
export function appOnlyFailure(state: AppOnlyState | undefined): Failure | undefined {
  if (!state?.lastError) return undefined;
  return {
    class: 'client',
    remedy: state.failure?.remedy ?? 'fix_app_registration',
    reason: state.failure?.reason ?? `the provider answered ${state.lastError}`,
    hint: state.failure?.hint,
  };
}

export const APP_ONLY_PREFIX = 'broker-app-';
/** The record's value: a marker, never a credential (Key Vault wants a value). */
const MARKER = 'client_credentials';

export const appOnlyRecordName = (connectionId: string): string => `${APP_ONLY_PREFIX}${connectionId}`;

export function appOnlyFromTags(tags: Record<string, string>): AppOnlyState {
  const state: AppOnlyState = {
    appOnly: true,
    status: tags.status === 'connected' ? 'connected' : 'not_connected',
  };
  if (tags.refreshedAt) state.refreshedAt = tags.refreshedAt;
  if (tags.connectedAt) state.connectedAt = tags.connectedAt;
  if (tags.lastError) state.lastError = tags.lastError.slice(0, 256);
  if (tags.lastError && tags.remedy) {
    state.failure = {
      remedy: tags.remedy as RemedyKind,
      reason: tags.reason ?? '',
      hint: (tags.hint || undefined) as RemedyHint | undefined,
    };
  }
  return state;
}

function toTags(state: AppOnlyState): Record<string, string> {
  const tags: Record<string, string> = { flow: MARKER, status: state.status };
  if (state.refreshedAt) tags.refreshedAt = state.refreshedAt;
  if (state.connectedAt) tags.connectedAt = state.connectedAt;
  if (state.lastError) tags.lastError = state.lastError.slice(0, 256);
  if (state.lastError && state.failure) {
    tags.remedy = state.failure.remedy;
    tags.reason = state.failure.reason.slice(0, 256);
    if (state.failure.hint) tags.hint = state.failure.hint;
  }
  return tags;
}

/**
 * Reads and writes the records. Every write is a new version carrying the whole state, so two
 * instances writing at once cannot leave tags on a version nobody reads (the latest wins, and both
 * wrote what they saw a moment ago). Writes are rare: see `AppOnlyService.note`.
 */
export class AppOnlyStateStore {
  constructor(private readonly store: SecretStore) {}

  async read(connectionId: string): Promise<AppOnlyState | undefined> {
    const secret = await this.store.getSecret(appOnlyRecordName(connectionId));
    return secret ? appOnlyFromTags(secret.tags) : undefined;
  }

  async write(connectionId: string, state: AppOnlyState): Promise<void> {
    await this.store.setSecret(appOnlyRecordName(connectionId), MARKER, { tags: toTags(state) });
  }
}

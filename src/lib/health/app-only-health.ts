import type { AppOnlyConnection } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import { type AppOnlyState, appOnlyFailure } from '../tokens/app-only-state.js';
import type { Deadline } from './deadlines.js';
import { remedyForDeadline, renderRemedy } from './remedies.js';

/** The fields of `ConnectionHealth` (status-service.ts) an app-only connection fills in its own way. */
export interface AppOnlyHealth {
  id: string;
  provider: AppOnlyConnection['provider'];
  flow: 'client_credentials';
  status: 'connected' | 'not_connected';
  account: null;
  consentedAt: string | null;
  refreshedAt: string | null;
  lastError: string | null;
  deadlines: Deadline[];
  nextDeadline: Deadline | null;
  warning: boolean;
  remedy: Remedy | null;
}

/**
 * The health of an app-only connection: `not_connected` until a token request succeeded, then
 * `connected`; its last failure and remedy; and only the credential's deadlines (there is no
 * refresh token to expire through inactivity, and no consent to expire).
 */
export function appOnlyHealth(
  c: AppOnlyConnection,
  state: AppOnlyState | undefined,
  credentialDeadlines: Deadline[],
  context: { now: number; warnBeforeMs: number; publicUrl: string },
): AppOnlyHealth {
  const nextDeadline = credentialDeadlines[0] ?? null;
  const warning = nextDeadline !== null && Date.parse(nextDeadline.at) - context.now <= context.warnBeforeMs;
  const ctx = { connection: c, publicUrl: context.publicUrl };
  const failure = appOnlyFailure(state);
  const remedy = failure
    ? renderRemedy(failure, ctx)
    : warning && nextDeadline
      ? remedyForDeadline(nextDeadline, ctx, context.now)
      : null;
  return {
    id: c.id,
    provider: c.provider,
    flow: c.flow,
    status: state?.status ?? 'not_connected',
    account: null,
    consentedAt: state?.connectedAt ?? null,
    refreshedAt: state?.refreshedAt ?? null,
    lastError: state?.lastError ?? null,
    deadlines: credentialDeadlines,
    nextDeadline,
    warning,
    remedy,
  };
}

import type { Connection } from '../config/connections.js';
import type { Remedy } from '../errors.js';
import type { CallerUse } from './caller-activity.js';
import type { Deadline } from './deadlines.js';

export type ConnectionStatus = 'connected' | 'needs_consent' | 'not_connected';

/** One connection's line of `/api/status` (docs/design.md, "Routes"). */
export interface ConnectionHealth {
  id: string;
  provider: Connection['provider'];
  flow: string;
  status: ConnectionStatus;
  account: string | null;
  consentedAt: string | null;
  refreshedAt: string | null;
  lastError: string | null;
  hardExpiresAt?: string;
  /** Earliest first. */
  deadlines: Deadline[];
  nextDeadline: Deadline | null;
  /** True when `nextDeadline` is within `WARN_BEFORE` (or past). */
  warning: boolean;
  /** Who got this connection's tokens from this instance lately, newest first. */
  callers: CallerUse[];
  /** What a person does about it; null when nothing is wrong (docs/design.md, "Telling people what to do"). */
  remedy: Remedy | null;
}

import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ConnectionCatalog } from '../config/catalog.js';
import type { Connection } from '../config/connections.js';
import { DAY_MS } from '../config/duration.js';
import { randomToken } from '../crypto/tokens.js';
import { BrokerError } from '../errors.js';
import { KeptList } from '../kept-list.js';
import type { Logger } from '../logger.js';
import type { Actor, Invitation, InvitationStore } from './invitation-store.js';

/** docs/design.md, "Invitations": a link lives 7 days unless asked otherwise, and never more than 30. */
export const DEFAULT_INVITATION_TTL_MS = 7 * DAY_MS;
export const MAX_INVITATION_TTL_MS = 30 * DAY_MS;
/** 32 random bytes (256 bits) in base64url: 43 characters, nothing else is ever a token. */
const TOKEN_BYTES = 32;
export const INVITATION_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface CreatedInvitation {
  id: string;
  /** `{BROKER_PUBLIC_URL}/api/connect/{token}`: the only place the token ever appears. */
  url: string;
  expiresAt: string;
  replace: boolean;
}

export type InvitationState = 'pending' | 'used' | 'revoked' | 'expired';

/** An invitation as lists show it: never its token, nor its hash. */
export interface InvitationView {
  id: string;
  connection: string;
  state: InvitationState;
  createdAt: string;
  expiresAt: string;
  replace: boolean;
  note?: string;
  createdBy: Actor;
  usedAt?: string;
  usedBy?: string;
  revokedAt?: string;
}

/** What a valid token opens: the invitation and its connection. */
export interface ResolvedInvitation {
  invitation: Invitation;
  connection: Connection;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** One answer for unknown, expired, used and revoked: the link gives nothing away about which. */
function invalid(): BrokerError {
  return new BrokerError(
    'invitation_invalid',
    'This link is not valid any more: it may have expired, been used already or been withdrawn. Ask whoever sent it for a new one.',
  );
}

/**
 * Invitations (docs/design.md, "Invitations"): a link that lets the owner of a mailbox consent without
 * any broker credential. Only the token's SHA-256 is stored, so the store (or a backup of it)
 * cannot be turned into working links; a token is used up by the first consent that stores a grant.
 */
export class InvitationService {
  constructor(
    private readonly deps: {
      store: InvitationStore;
      catalog: ConnectionCatalog;
      clock: Clock;
      logger: Logger;
      publicUrl: string;
      /** Wall time for the kept list's age (the broker's clock is held still in tests). */
      now?: () => number;
    },
  ) {
    // Listing the open invitations reads every invitation of every connection, not something to do
    // per status page view: kept up to 30 s, not refreshed before then (other instances' changes
    // show within the contract's 30 s), dropped by every change made here.
    this.open = new KeptList(async () => (await deps.store.list()).filter((i) => !i.usedAt && !i.revokedAt), {
      refreshAfterMs: Number.POSITIVE_INFINITY,
      now: deps.now,
    });
  }

  /** The invitations not used or revoked, as last listed. */
  private readonly open: KeptList<Invitation>;

  async create(
    connectionId: string,
    options: { expiresInMs?: number; note?: string; replace?: boolean },
    by: Actor,
  ): Promise<CreatedInvitation> {
    const connection = await this.deps.catalog.get(connectionId);
    const ttl = options.expiresInMs ?? DEFAULT_INVITATION_TTL_MS;
    if (!(ttl > 0 && ttl <= MAX_INVITATION_TTL_MS)) {
      throw new BrokerError('invalid_request', 'expiresIn must be a duration above zero and at most P30D.');
    }
    const token = randomToken(TOKEN_BYTES);
    const now = this.deps.clock.now();
    const invitation: Invitation = {
      id: randomToken(16),
      connection: connection.id,
      tokenHash: tokenHash(token),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttl).toISOString(),
      replace: options.replace === true,
      createdBy: by,
    };
    if (options.note !== undefined) invitation.note = options.note;
    await this.deps.store.create(invitation);
    this.open.clear();
    this.deps.logger.info('invitation.created', {
      connection: connection.id,
      invitation: invitation.id,
      by: by.name ?? by.id,
      expiresAt: invitation.expiresAt,
      replace: invitation.replace,
    });
    return {
      id: invitation.id,
      url: `${this.deps.publicUrl}/api/connect/${token}`,
      expiresAt: invitation.expiresAt,
      replace: invitation.replace,
    };
  }

  async list(connectionId: string): Promise<InvitationView[]> {
    const connection = await this.deps.catalog.get(connectionId);
    const now = this.deps.clock.now();
    return (await this.deps.store.list(connection.id)).map((i) => this.view(i, now));
  }

  /**
   * Every connection's invitations still waiting to be used (the status page), soonest expiry
   * first: from a list kept up to 30 s (this instance's changes drop it), expiry checked now.
   */
  async pending(): Promise<InvitationView[]> {
    const open = await this.open.get();
    const now = this.deps.clock.now();
    return open
      .map((i) => this.view(i, now))
      .filter((v) => v.state === 'pending')
      .sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
  }

  /** 204 whatever state it was in; 404 `not_found` only when the connection has no such invitation. */
  async revoke(connectionId: string, invitationId: string, by: Actor): Promise<void> {
    const connection = await this.deps.catalog.get(connectionId);
    let revoked = false;
    const after = await this.deps.store.update(connection.id, invitationId, (current) => {
      if (current.revokedAt || current.usedAt) return undefined;
      revoked = true;
      return { ...current, revokedAt: new Date(this.deps.clock.now()).toISOString(), revokedBy: by };
    });
    if (!after) {
      throw new BrokerError('not_found', `Connection "${connection.id}" has no such invitation.`, {
        connectionId: connection.id,
      });
    }
    if (revoked) {
      this.open.clear();
      this.deps.logger.info('invitation.revoked', {
        connection: connection.id,
        invitation: invitationId,
        by: by.name ?? by.id,
      });
    }
  }

  /** Revokes every pending invitation of a connection (it was deleted): no catalog lookup, it is gone. */
  async revokeAll(connectionId: string, by: Actor): Promise<void> {
    const now = this.deps.clock.now();
    for (const invitation of await this.deps.store.list(connectionId)) {
      if (this.stateOf(invitation, now) !== 'pending') continue;
      await this.deps.store.update(connectionId, invitation.id, (current) =>
        current.revokedAt || current.usedAt
          ? undefined
          : { ...current, revokedAt: new Date(this.deps.clock.now()).toISOString(), revokedBy: by },
      );
      this.open.clear();
      this.deps.logger.info('invitation.revoked', {
        connection: connectionId,
        invitation: invitation.id,
        by: by.name ?? by.id,
      });
    }
  }

  /** The invitation a token opens, or 410 `invitation_invalid` (malformed, unknown, expired, used, revoked). */
  async resolve(token: string): Promise<ResolvedInvitation> {
    if (!INVITATION_TOKEN.test(token)) throw invalid();
    const invitation = await this.deps.store.findByTokenHash(tokenHash(token));
    if (!invitation || this.stateOf(invitation, this.deps.clock.now()) !== 'pending') throw invalid();
    let connection: Connection;
    try {
      connection = await this.deps.catalog.get(invitation.connection);
    } catch {
      // A connection deleted since: its invitations went with it.
      throw invalid();
    }
    return { invitation, connection };
  }

  /**
   * Uses the invitation up; called under the connection's lock just before a consent's grant is
   * stored, so the second of two consents begun from one link stores nothing. Throws 410 when it
   * was used, revoked or expired meanwhile.
   */
  async claim(connectionId: string, invitationId: string, account: string | undefined): Promise<void> {
    let claimed = false;
    await this.deps.store.update(connectionId, invitationId, (current) => {
      if (this.stateOf(current, this.deps.clock.now()) !== 'pending') return undefined;
      claimed = true;
      const used: Invitation = { ...current, usedAt: new Date(this.deps.clock.now()).toISOString() };
      if (account) used.usedBy = account;
      return used;
    });
    if (!claimed) {
      this.deps.logger.warn('invitation.refused', { connection: connectionId, invitation: invitationId });
      throw invalid();
    }
    this.open.clear();
    this.deps.logger.info('invitation.used', {
      connection: connectionId,
      invitation: invitationId,
      account,
    });
  }

  private stateOf(invitation: Invitation, now: number): InvitationState {
    if (invitation.revokedAt) return 'revoked';
    if (invitation.usedAt) return 'used';
    if (Date.parse(invitation.expiresAt) <= now) return 'expired';
    return 'pending';
  }

  private view(invitation: Invitation, now: number): InvitationView {
    const { tokenHash: _hash, revokedBy: _by, ...rest } = invitation;
    return { ...rest, state: this.stateOf(invitation, now) };
  }
}

import * as z from 'zod';

/** An invitation's public id: what lists, log lines and `DELETE …/invitations/{id}` name. */
export const INVITATION_ID = /^[A-Za-z0-9_-]{22}$/;
/** The SHA-256 of a token, hex: all the store ever holds of it. */
export const TOKEN_HASH = /^[0-9a-f]{64}$/;

const iso = z.iso.datetime();
const actor = z.object({ name: z.string().max(256).optional(), id: z.string().max(256).optional() });

/** One stored invitation (docs/design.md, "Invitations"); never the token itself. */
export const invitationRecord = z.object({
  id: z.string().regex(INVITATION_ID),
  connection: z.string().min(1).max(63),
  tokenHash: z.string().regex(TOKEN_HASH),
  createdAt: iso,
  expiresAt: iso,
  replace: z.boolean(),
  note: z.string().max(200).optional(),
  createdBy: actor,
  /** The first consent that stored a grant with it, and the account it connected. */
  usedAt: iso.optional(),
  usedBy: z.string().max(256).optional(),
  revokedAt: iso.optional(),
  revokedBy: actor.optional(),
});
export type Invitation = z.infer<typeof invitationRecord>;
export type Actor = z.infer<typeof actor>;

/**
 * Where invitations live: beside the connection definitions (the data folder, or Table Storage),
 * never in the secret store, whose transaction budget belongs to refresh tokens.
 */
export interface InvitationStore {
  /** Adds a new invitation (its id and token hash are fresh random values). */
  create(invitation: Invitation): Promise<void>;
  /** The invitation whose token hashes to `tokenHash`, whatever its state. */
  findByTokenHash(tokenHash: string): Promise<Invitation | undefined>;
  /** A connection's invitations (every connection's when none is named), every state, oldest first. */
  list(connection?: string): Promise<Invitation[]>;
  /**
   * Read-modify-write of one invitation, one writer at a time: `change` sees the latest record and
   * returns the new one (or undefined to leave it). Resolves to what is stored after, undefined when
   * there is no such invitation.
   */
  update(
    connection: string,
    id: string,
    change: (current: Invitation) => Invitation | undefined,
  ): Promise<Invitation | undefined>;
}

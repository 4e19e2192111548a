import * as z from 'zod';

/**
 * What the broker seals for itself during a consent, parsed back with zod like every other input:
 * a value that unseals (so the broker wrote it) but does not fit is refused the same way as a forged
 * one. A state lives 10 minutes and the seal key is the same on every instance, so a change of shape
 * needs no migration beyond one deploy's open consents.
 */
const person = z.object({ name: z.string().optional(), id: z.string().optional() });

/** The authorization code attempt, in its cookie. */
export const consentStateSchema = z.object({
  connection: z.string(),
  state: z.string(),
  nonce: z.string(),
  /** PKCE verifier (RFC 7636). */
  verifier: z.string(),
  /** Who began it (ADMIN_AUTH=easyauth), for the consent log line. */
  by: person.optional(),
  /** Expiry, epoch ms (the seal's own). */
  expiresAt: z.number().optional(),
  /** Began with `replace=true`: another account may take the connection over. */
  replace: z.literal(true).optional(),
  /** Begun from this invitation (its id): used up when the grant is stored (docs/invitations.md). */
  invitation: z.string().optional(),
});
export type ConsentState = z.infer<typeof consentStateSchema>;

/**
 * A device code attempt, sealed into the poll URL at every poll: its keys stay one letter because it
 * travels in a URL a browser reloads.
 */
export const deviceAttemptSchema = z.object({
  /** attempt id */
  a: z.string(),
  /** connection id */
  c: z.string(),
  /** device code */
  d: z.string(),
  /** interval, seconds */
  i: z.number(),
  /** next allowed poll, epoch ms */
  n: z.number(),
  /** device code expiry, epoch ms */
  x: z.number(),
  /** user code and verification URI, to show again on a poll page for browsers without JavaScript */
  u: z.string(),
  v: z.string(),
  /** who began it (ADMIN_AUTH=easyauth), for the consent log line */
  b: person.optional(),
  /** began with `replace=true`: another account may take the connection over */
  r: z.literal(true).optional(),
  /** begun from this invitation (its id), used up when the grant is stored */
  inv: z.string().optional(),
});
export type SealedAttempt = z.infer<typeof deviceAttemptSchema>;

/** The parsed value, or undefined when it does not fit (never an exception: it came from outside). */
export function parseSealed<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

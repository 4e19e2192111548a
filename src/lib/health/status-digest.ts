import * as z from 'zod';
import { CONNECTION_ID } from '../config/connections.js';
import { parseJson } from '../oauth/json.js';
import type { SecretStore } from '../store/secret-store.js';
import { STATUS_PAGE_SIZE } from './status-page-size.js';

/**
 * What the status page of a deployment past one page needs before it has read every connection:
 * how many there are, how many need a person, and the ids of the first page of those (by id). Every
 * instance that reads the whole list (the status page's background refresh, each rotation pass)
 * writes it to the store, so an instance that has just started (or whose list expired) answers page
 * 1 from one read and a few hundred point reads instead of listing 100,000 connections first
 * (docs/status-and-rotation.md). A non-secret record under the reserved `broker-` prefix, as
 * `broker-app-{id}` is: the store is the one place every instance shares.
 */
export const STATUS_DIGEST_SECRET = 'broker-status-digest';

/** A digest this old is written again even when nothing in it changed, so its `at` stays honest. */
const REWRITE_AFTER_MS = 3_600_000;

const digestSchema = z.object({
  v: z.literal(1),
  /** When the list it was made from was read (ISO-8601). */
  at: z.iso.datetime(),
  total: z.number().int().nonnegative(),
  attention: z.number().int().nonnegative(),
  /** Ids of the connections needing a person, by id, one page of them at most. */
  first: z.array(z.string().regex(CONNECTION_ID)).max(STATUS_PAGE_SIZE),
});

export type StatusDigest = z.infer<typeof digestSchema>;

export function digestOf(
  list: readonly { id: string; remedy: unknown }[],
  at: number,
  size = STATUS_PAGE_SIZE,
): StatusDigest {
  const needing = list
    .filter((h) => h.remedy !== null)
    .map((h) => h.id)
    .sort();
  return {
    v: 1,
    at: new Date(at).toISOString(),
    total: list.length,
    attention: needing.length,
    first: needing.slice(0, size),
  };
}

/** The digest in the secret store: read once per need, written only when it says something new. */
export class StatusDigests {
  /** What the stored digest says (`at` aside) and when it was written, as far as this instance knows. */
  private known?: { content: string; at: number } | null;

  constructor(
    private readonly store: SecretStore,
    private readonly size = STATUS_PAGE_SIZE,
  ) {}

  /** The stored digest; `undefined` when there is none or it is not one this version reads. */
  async read(): Promise<StatusDigest | undefined> {
    const stored = await this.store.getSecret(STATUS_DIGEST_SECRET);
    const parsed = stored ? digestSchema.safeParse(parseJson(stored.value)) : undefined;
    const digest = parsed?.success ? parsed.data : undefined;
    this.known = digest ? { content: contentOf(digest), at: Date.parse(digest.at) } : null;
    return digest;
  }

  /**
   * Stores `digest` unless the stored one says the same and is under an hour old. Within one page
   * nothing is read or written (a deployment that never grew past a page gets no digest, and its
   * page reads everything anyway) unless this instance has read a digest: one that shrank gets its
   * digest corrected by the first instance whose page used it.
   */
  async write(digest: StatusDigest): Promise<void> {
    if (this.known === undefined && digest.total <= this.size) return;
    if (this.known === undefined) await this.read();
    const content = contentOf(digest);
    const at = Date.parse(digest.at);
    const known = this.known;
    if (known === null && digest.total <= this.size) return;
    if (known && known.content === content && at - known.at < REWRITE_AFTER_MS) return;
    await this.store.setSecret(STATUS_DIGEST_SECRET, JSON.stringify(digest), {
      tags: { purpose: 'status-digest' },
    });
    this.known = { content, at };
  }
}

function contentOf(d: StatusDigest): string {
  return JSON.stringify([d.total, d.attention, d.first]);
}

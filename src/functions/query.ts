import * as z from 'zod';
import type { Broker } from '../lib/broker.js';
import { CONNECTION_ID } from '../lib/config/connections.js';

/** The `connection` query parameter every route shares. */
export const connectionParam = z
  .string({ error: 'is required' })
  .regex(CONNECTION_ID, 'must be a connection id (lowercase letters, digits, dashes)');

/** The function key as `?code=`, which pages repeat in their links (the host has checked it). */
export const keyParam = z.string().max(512).optional();

/**
 * The key a page repeats in its links: the `?code=` it was opened with, under `ADMIN_AUTH=key` only.
 * Under easyauth nobody has a key, and none belongs in a link.
 */
export function linkKey(broker: Broker, code: string | null | undefined): string | undefined {
  return broker.settings.adminAuth.mode === 'key' ? (code ?? undefined) : undefined;
}

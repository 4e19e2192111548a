import type { HttpResponseInit } from '@azure/functions';
import * as z from 'zod';
import type { Broker } from '../lib/broker.js';
import { skipToken, skipTokenOf, top } from './admin-http.js';

/**
 * Paging of `/api/status` (docs/status-and-rotation.md): the page's `q` and `page`, and for JSON an
 * optional `top` + `skipToken` as `/api/connections` has them. Without `top` the JSON is the
 * contract's whole `{"connections": [...]}`, as before.
 */
export const statusListQuery = {
  q: z.string().max(200, 'is at most 200 characters').optional(),
  page: z
    .string()
    .regex(/^\d{1,7}$/, 'must be a page number')
    .transform(Number)
    .refine((n) => n >= 1, 'must be 1 or more')
    .optional(),
  top,
  skipToken,
};

export async function jsonHealthPage(
  broker: Broker,
  q: { top?: number; skipToken?: string },
): Promise<HttpResponseInit> {
  const headers = { 'Cache-Control': 'no-store' };
  if (q.top === undefined) {
    return { status: 200, headers, jsonBody: { connections: await broker.status.healthForPage() } };
  }
  const page = await broker.status.pageAfter(q.top, q.skipToken);
  let nextLink: string | null = null;
  if (page.next !== undefined) {
    const params = new URLSearchParams({ top: String(q.top), skipToken: skipTokenOf(page.next) });
    nextLink = `${broker.settings.publicUrl}/api/status?${params}`;
  }
  return { status: 200, headers, jsonBody: { connections: page.items, nextLink } };
}

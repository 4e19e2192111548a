import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/lib/clock.js';
import { getRequest, MAX_RESPONSE_BYTES, send } from '../../src/lib/oauth/index.js';
import { rejection } from '../support/errors.js';
import { memoryLogger } from '../support/logs.js';

/** A response whose body is `total` bytes (or endless), counting how many bytes were pulled from it. */
function bigResponse(total: number, headers: Record<string, string> = {}) {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const seen = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (seen.pulled >= total) return controller.close();
      seen.pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { seen, fetch: (async () => new Response(body, { status: 200, headers })) as typeof fetch };
}

/** DESIGN.md, "Hostile input rules": provider response bodies are read up to 1 MiB. */
describe('send reads provider bodies up to 1 MiB', () => {
  const deps = (fetchFn: typeof fetch) => ({
    fetch: fetchFn,
    clock: new ManualClock(0),
    logger: memoryLogger().logger,
    maxRetries: 0,
  });
  const request = getRequest('https://login.example.com/userinfo', { connectionId: 'c' });

  it('reads a body of exactly 1 MiB', async () => {
    const { fetch } = bigResponse(MAX_RESPONSE_BYTES);
    const response = await send(deps(fetch), request);
    expect(response.bodyText.length).toBe(MAX_RESPONSE_BYTES);
  });

  it('stops reading an endless body past 1 MiB and answers upstream_unavailable', async () => {
    const { fetch, seen } = bigResponse(Number.POSITIVE_INFINITY);
    const err = await rejection(send(deps(fetch), request));
    expect(err.code).toBe('upstream_unavailable');
    expect(err.message).toContain('larger than 1 MiB');
    expect(seen.pulled).toBeLessThan(MAX_RESPONSE_BYTES + 256 * 1024);
    expect(seen.cancelled).toBe(true);
  });

  it('refuses a declared Content-Length over 1 MiB without reading it', async () => {
    const { fetch, seen } = bigResponse(4 * MAX_RESPONSE_BYTES, {
      'content-length': String(4 * MAX_RESPONSE_BYTES),
    });
    const err = await rejection(send(deps(fetch), request));
    expect(err.code).toBe('upstream_unavailable');
    expect(seen.pulled).toBeLessThanOrEqual(64 * 1024);
  });
});

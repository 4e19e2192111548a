import { z } from 'zod';
import { parseQuery } from '../lib/http/request.js';
import { adapter, type BrokerSource } from './adapter.js';
import { deviceStartResponse } from './device-page.js';
import { connectionParam } from './query.js';

const query = z.object({ connection: connectionParam, code: z.string().max(512).optional() });

/**
 * `GET /api/start`: 302 to the provider's sign-in, with the sealed state in a short-lived cookie; for
 * a device-code connection the user code, as a page that polls `/api/start/poll` or as JSON.
 */
export const startHandler = (source: BrokerSource) =>
  adapter(source, async (broker, request) => {
    const q = parseQuery(request, query);
    const started = await broker.consent.start(q.connection);
    if (started.flow === 'device_code') {
      return deviceStartResponse(request, started.device, {
        publicUrl: broker.settings.publicUrl,
        // Opened with ?code=, the page polls with the same key; a header key is not repeated anywhere.
        key: q.code,
        expectedAccount: broker.connections.get(q.connection).expectedAccount,
      });
    }
    const { location, cookie } = started;
    return {
      status: 302,
      headers: { Location: location, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
      cookies: [
        {
          name: cookie.name,
          value: cookie.value,
          maxAge: cookie.maxAgeSeconds,
          path: '/api',
          httpOnly: true,
          sameSite: 'Lax',
          secure: broker.settings.publicUrl.startsWith('https:'),
        },
      ],
    };
  });

import { z } from 'zod';
import { parseQuery } from '../lib/http/request.js';
import { adapter, type BrokerSource } from './adapter.js';
import { connectionParam } from './query.js';

const query = z.object({ connection: connectionParam });

/** `GET /api/start`: 302 to the provider's sign-in, with the sealed state in a short-lived cookie. */
export const startHandler = (source: BrokerSource) =>
  adapter(source, async (broker, request) => {
    const q = parseQuery(request, query);
    const { location, cookie } = await broker.consent.start(q.connection);
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

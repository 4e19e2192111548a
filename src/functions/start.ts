import * as z from 'zod';
import type { DeviceStart } from '../lib/consent/device-service.js';
import { parseQuery, wantsJson } from '../lib/http/request.js';
import { deviceStartPage } from '../views/device-page.js';
import { pollPath } from '../views/links.js';
import { adapter, type BrokerSource } from './adapter.js';
import { connectionParam, keyParam, linkKey } from './query.js';

const query = z.object({
  connection: connectionParam,
  code: keyParam,
  // Account pinning: only a consent begun with replace=true may connect another account.
  replace: z.enum(['true', 'false']).optional(),
});

const NO_STORE = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' };

/** `{userCode, verificationUri, expiresIn, interval, pollUrl}` (docs/design.md, "Routes": `/api/start`, device code). */
function deviceStartJson(started: DeviceStart, publicUrl: string, key: string | undefined) {
  const body: Record<string, unknown> = {
    userCode: started.userCode,
    verificationUri: started.verificationUri,
    expiresIn: started.expiresIn,
    interval: started.interval,
    pollUrl: `${publicUrl}${pollPath(started.connectionId, started.attempt, key)}`,
  };
  if (started.verificationUriComplete) body.verificationUriComplete = started.verificationUriComplete;
  if (started.message) body.message = started.message;
  return { status: 200, headers: NO_STORE, jsonBody: body };
}

/**
 * `GET /api/start`: 302 to the provider's sign-in, with the sealed state in a short-lived cookie; for
 * a device-code connection the user code, as a page that polls `/api/start/poll` or as JSON.
 */
export const startHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, person }) => {
      const q = parseQuery(request.query, query);
      const key = linkKey(broker, q.code);
      const started = await broker.consent.start(q.connection, person, { replace: q.replace === 'true' });
      if (started.flow === 'device_code') {
        // Opened with ?code=, the page polls with the same key; a header key is not repeated anywhere.
        if (wantsJson(request.headers.get('accept')))
          return deviceStartJson(started.device, broker.settings.publicUrl, key);
        return deviceStartPage(started.device, {
          key,
          expectedAccount: (await broker.connections.get(q.connection)).expectedAccount,
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
    },
    { people: true },
  );

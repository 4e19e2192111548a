import * as z from 'zod';
import { antiForgeryToken, checkAntiForgery, isCrossSiteNavigation } from '../lib/http/anti-forgery.js';
import { parseQuery } from '../lib/http/request.js';
import { confirmPage } from '../views/confirm-page.js';
import { pollPath, startPath } from '../views/links.js';
import { adapter, type BrokerSource } from './adapter.js';
import { beginConsent } from './begin-consent.js';
import { antiForgeryCookie, readForm } from './form.js';
import { connectionParam, keyParam, linkKey } from './query.js';

const query = z.object({
  connection: connectionParam,
  code: keyParam,
  // Account pinning: only a consent begun with replace=true may connect another account.
  replace: z.enum(['true', 'false']).optional(),
});

/**
 * `GET /api/start`: 302 to the provider's sign-in, with the sealed state in a short-lived cookie; for
 * a device-code connection the user code, as a page that polls `/api/start/poll` or as JSON.
 *
 * No consent begins on a GET from another site (docs/design.md, "Invitations"): a browser arriving
 * cross-site or same-site, or with a typed URL that replaces the account, gets a confirm page whose
 * button POSTs back here with the anti-forgery token. Scripts (no `Sec-Fetch-Site`) and the
 * broker's own pages (`same-origin`) begin at once, as before.
 */
export const startHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, person }) => {
      const q = parseQuery(request.query, query);
      const key = linkKey(broker, q.code);
      const replace = q.replace === 'true';
      if (request.method === 'POST') {
        checkAntiForgery(request.headers, await readForm(request));
      } else if (isCrossSiteNavigation(request.headers, replace)) {
        const connection = await broker.connections.get(q.connection);
        const token = antiForgeryToken(request.headers);
        return {
          // Posts back here; the key rides along only as links carry it (never under easyauth).
          ...confirmPage({
            connection,
            action: startPath(q.connection, key, replace),
            antiForgery: token,
            replace,
          }),
          cookies: [antiForgeryCookie(token, broker.settings.publicUrl)],
        };
      }
      return beginConsent(
        broker,
        request,
        q.connection,
        person,
        { replace },
        {
          key,
          pollPath: (c, a) => pollPath(c, a, key),
        },
      );
    },
    { people: true },
  );

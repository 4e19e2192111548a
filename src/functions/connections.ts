import type { Actor } from '../lib/definitions/definition-store.js';
import { adapter, type BrokerSource } from './adapter.js';
import {
  connectionsPageQuery,
  httpEtag,
  jsonAnswer,
  nextLink,
  readJsonBody,
  routeName,
  writeCondition,
} from './admin-http.js';

/** `GET/PUT/DELETE /api/connections/{id}` (docs/connections.md, "The admin API"). */
export const connectionHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, by }) => {
      const id = routeName(request, 'id', 'connection id');
      const actor: Actor = by ?? { name: 'function-key' };
      switch (request.method) {
        case 'PUT': {
          const condition = writeCondition(request, true);
          const body = await readJsonBody(request);
          const { entry, created } = await broker.definitions.putConnection(id, body, actor, condition);
          const headers: Record<string, string> = { ETag: httpEtag(entry.etag!) };
          if (created) headers.Location = `${broker.settings.publicUrl}/api/connections/${id}`;
          return jsonAnswer(created ? 201 : 200, entry, headers);
        }
        case 'DELETE':
          await broker.definitions.deleteConnection(id, actor, writeCondition(request, false));
          return { status: 204, headers: { 'Cache-Control': 'no-store' } };
        default: {
          const entry = await broker.definitions.getConnection(id);
          return jsonAnswer(200, entry, entry.etag ? { ETag: httpEtag(entry.etag) } : {});
        }
      }
    },
    { admin: true },
  );

/** `GET /api/connections[?source=][&template=][&top=][&skipToken=]`: both sources, ordered by id. */
export const connectionsHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const query = connectionsPageQuery(request);
      const page = await broker.definitions.listConnections(query);
      return jsonAnswer(200, {
        connections: page.items,
        nextLink: nextLink(broker.settings.publicUrl, 'connections', query, page.next),
      });
    },
    { admin: true },
  );

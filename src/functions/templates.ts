import type { Actor } from '../lib/definitions/definition-store.js';
import { adapter, type BrokerSource } from './adapter.js';
import {
  httpEtag,
  jsonAnswer,
  nextLink,
  readJsonBody,
  routeName,
  templatesPageQuery,
  writeCondition,
} from './admin-http.js';

/** `GET/PUT/DELETE /api/templates/{name}` (docs/connections.md, "Templates"). */
export const templateHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request, by }) => {
      const name = routeName(request, 'name', 'template name');
      const actor: Actor = by ?? { name: 'function-key' };
      switch (request.method) {
        case 'PUT': {
          const condition = writeCondition(request, true);
          const body = await readJsonBody(request);
          const { entry, created } = await broker.definitions.putTemplate(name, body, actor, condition);
          const headers: Record<string, string> = { ETag: httpEtag(entry.etag!) };
          if (created) headers.Location = `${broker.settings.publicUrl}/api/templates/${name}`;
          return jsonAnswer(created ? 201 : 200, entry, headers);
        }
        case 'DELETE':
          await broker.definitions.deleteTemplate(name, actor, writeCondition(request, false));
          return { status: 204, headers: { 'Cache-Control': 'no-store' } };
        default: {
          const entry = await broker.definitions.getTemplate(name);
          return jsonAnswer(200, entry, entry.etag ? { ETag: httpEtag(entry.etag) } : {});
        }
      }
    },
    { admin: true },
  );

/** `GET /api/templates[?top=][&skipToken=]`: both sources, ordered by name. */
export const templatesHandler = (source: BrokerSource) =>
  adapter(
    source,
    async ({ broker, request }) => {
      const query = templatesPageQuery(request);
      const page = await broker.definitions.listTemplates(query);
      return jsonAnswer(200, {
        templates: page.items,
        nextLink: nextLink(broker.settings.publicUrl, 'templates', query, page.next),
      });
    },
    { admin: true },
  );

import type { Settings } from '../lib/config/settings.js';
import type { BrokerSource } from './adapter.js';
import { callbackHandler } from './callback.js';
import { connectHandler, connectPollHandler } from './connect.js';
import { connectionHandler, connectionsHandler } from './connections.js';
import { invitationHandler, invitationsHandler } from './invitations.js';
import { rotateHandler } from './rotate.js';
import type { AuthLevel, HttpMethod, HttpRoute, TimerRoute } from './route-types.js';
import { startHandler } from './start.js';
import { startPollHandler } from './start-poll.js';
import { statusHandler } from './status.js';
import { templateHandler, templatesHandler } from './templates.js';
import { tokenHandler } from './token.js';

export interface RouteTable {
  http: HttpRoute[];
  timers: TimerRoute[];
}

/**
 * The one route table: `index.ts` registers it with Azure, `src/local` serves it. A route whose
 * clients prove themselves to the broker (Entra tokens, App Service sign-in) is anonymous at the
 * host, which would otherwise demand a function key first (docs/design.md, "Who may ask").
 */
export function routeTable(
  source: BrokerSource,
  settings: Pick<Settings, 'rotationSchedule' | 'callerAuth' | 'adminAuth'>,
): RouteTable {
  const callers: AuthLevel = settings.callerAuth.mode === 'key' ? 'function' : 'anonymous';
  const people: AuthLevel = settings.adminAuth.mode === 'key' ? 'function' : 'anonymous';
  const on =
    (...methods: HttpMethod[]) =>
    (name: string, route: string, authLevel: AuthLevel, handler: HttpRoute['handler']): HttpRoute => ({
      name,
      route,
      methods,
      authLevel,
      handler,
    });
  const get = on('GET');
  // Admins are people (or, under easyauth with CALLER_AUTH=entra, services): the same host level.
  const admins = people;
  return {
    http: [
      // POST: the confirm page's form (no consent begins on a cross-site GET).
      on('GET', 'POST')('start', 'start', people, startHandler(source)),
      get('startPoll', 'start/poll', people, startPollHandler(source)),
      get('callback', 'callback', 'anonymous', callbackHandler(source)),
      get('token', 'token', callers, tokenHandler(source)),
      // POST: the status page's admin forms (invite, revoke), with the anti-forgery token.
      on('GET', 'POST')('status', 'status', people, statusHandler(source)),
      get('connections', 'connections', admins, connectionsHandler(source)),
      on('GET', 'PUT', 'DELETE')('connection', 'connections/{id}', admins, connectionHandler(source)),
      get('templates', 'templates', admins, templatesHandler(source)),
      on('GET', 'PUT', 'DELETE')('template', 'templates/{name}', admins, templateHandler(source)),
      // Invitations: the owner of a mailbox holds no key; the token in the path is the credential.
      on('GET', 'POST')('connect', 'connect/{token}', 'anonymous', connectHandler(source)),
      get('connectPoll', 'connect/poll', 'anonymous', connectPollHandler(source)),
      on('GET', 'POST')('invitations', 'connections/{id}/invitations', admins, invitationsHandler(source)),
      on('DELETE')(
        'invitation',
        'connections/{id}/invitations/{invitation}',
        admins,
        invitationHandler(source),
      ),
    ],
    timers: [{ name: 'rotate', schedule: settings.rotationSchedule, handler: rotateHandler(source) }],
  };
}

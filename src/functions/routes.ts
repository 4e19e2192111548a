import type { Settings } from '../lib/config/settings.js';
import type { BrokerSource } from './adapter.js';
import { callbackHandler } from './callback.js';
import { connectionHandler, connectionsHandler } from './connections.js';
import { rotateHandler } from './rotate.js';
import type { AuthLevel, HttpRoute, TimerRoute } from './route-types.js';
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
  // Admins are people (or, under easyauth with CALLER_AUTH=entra, services): the same host level.
  const admins = people;
  const get = (
    name: string,
    route: string,
    authLevel: AuthLevel,
    handler: HttpRoute['handler'],
  ): HttpRoute => ({
    name,
    route,
    methods: ['GET'],
    authLevel,
    handler,
  });
  return {
    http: [
      get('start', 'start', people, startHandler(source)),
      get('startPoll', 'start/poll', people, startPollHandler(source)),
      get('callback', 'callback', 'anonymous', callbackHandler(source)),
      get('token', 'token', callers, tokenHandler(source)),
      get('status', 'status', people, statusHandler(source)),
      get('connections', 'connections', admins, connectionsHandler(source)),
      {
        ...get('connection', 'connections/{id}', admins, connectionHandler(source)),
        methods: ['GET', 'PUT', 'DELETE'],
      },
      get('templates', 'templates', admins, templatesHandler(source)),
      {
        ...get('template', 'templates/{name}', admins, templateHandler(source)),
        methods: ['GET', 'PUT', 'DELETE'],
      },
    ],
    timers: [{ name: 'rotate', schedule: settings.rotationSchedule, handler: rotateHandler(source) }],
  };
}

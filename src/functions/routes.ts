import type { BrokerSource } from './adapter.js';
import { callbackHandler } from './callback.js';
import { rotateHandler } from './rotate.js';
import type { HttpRoute, TimerRoute } from './route-types.js';
import { startHandler } from './start.js';
import { startPollHandler } from './start-poll.js';
import { statusHandler } from './status.js';
import { tokenHandler } from './token.js';

export interface RouteTable {
  http: HttpRoute[];
  timers: TimerRoute[];
}

/** The one route table: `index.ts` registers it with Azure, `src/local` serves it. */
export function routeTable(source: BrokerSource, rotationSchedule: string): RouteTable {
  return {
    http: [
      {
        name: 'start',
        route: 'start',
        methods: ['GET'],
        authLevel: 'function',
        handler: startHandler(source),
      },
      {
        name: 'startPoll',
        route: 'start/poll',
        methods: ['GET'],
        authLevel: 'function',
        handler: startPollHandler(source),
      },
      {
        name: 'callback',
        route: 'callback',
        methods: ['GET'],
        authLevel: 'anonymous',
        handler: callbackHandler(source),
      },
      {
        name: 'token',
        route: 'token',
        methods: ['GET'],
        authLevel: 'function',
        handler: tokenHandler(source),
      },
      {
        name: 'status',
        route: 'status',
        methods: ['GET'],
        authLevel: 'function',
        handler: statusHandler(source),
      },
    ],
    timers: [{ name: 'rotate', schedule: rotationSchedule, handler: rotateHandler(source) }],
  };
}

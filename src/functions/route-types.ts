import type { HttpHandler, InvocationContext, Timer } from '@azure/functions';

/**
 * Host-neutral route definitions: the Azure registration (`app.http` / `app.timer`) and the
 * embedded local host are both generated from the one table in `routes.ts`, so they cannot drift.
 */
export type AuthLevel = 'anonymous' | 'function';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';

export interface HttpRoute {
  name: string;
  /** Route below `/api`, without leading slash, e.g. `token` or `start/poll`. */
  route: string;
  methods: HttpMethod[];
  authLevel: AuthLevel;
  handler: HttpHandler;
}

export type TimerHandler = (timer: Timer, context: InvocationContext) => Promise<void>;

export interface TimerRoute {
  name: string;
  /** NCRONTAB, six fields (second minute hour day month weekday), UTC. */
  schedule: string;
  handler: TimerHandler;
}

import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { type Person, signInRequired } from '../lib/auth/person-auth.js';
import type { Broker } from '../lib/broker.js';
import type { Actor } from '../lib/definitions/definition-store.js';
import { explainError } from '../lib/health/remedies.js';
import { problemResponse } from '../lib/http/problem.js';
import { prefersHtml } from '../lib/http/request.js';
import { traced } from './traced.js';

/** How adapters reach the services: built once per process, on first use. */
export type BrokerSource = () => Promise<Broker>;

export interface AdapterOptions {
  /** A human route: under `ADMIN_AUTH=easyauth` only signed-in people with the admin role pass. */
  people?: boolean;
  /**
   * An admin route (connections, templates, invitations): the admin gate lets through the function
   * key, people with `ADMIN_ROLE`, or services whose app token carries it; `call.by` says who.
   */
  admin?: boolean;
  /** Renders a thrown error when problem+json is not what the client wants (an HTML page for browsers). */
  onError?: (err: unknown, broker: Broker, request: HttpRequest) => HttpResponseInit | undefined;
}

/** What a handler is given: the services, the request, and the person when the route is for people. */
export interface Call {
  broker: Broker;
  request: HttpRequest;
  context: InvocationContext;
  person?: Person;
  /** On admin routes: who is making the change, for entries and log lines. */
  by?: Actor;
}

/**
 * The shape every HTTP adapter shares: get the broker, let only the right people through, run, and
 * turn a thrown error into problem+json (or what `onError` renders).
 */
export function adapter(
  source: BrokerSource,
  run: (call: Call) => Promise<HttpResponseInit>,
  options: AdapterOptions = {},
): HttpHandler {
  const handle: HttpHandler = async (request, context) => {
    let broker: Broker;
    try {
      broker = await source();
    } catch (err) {
      context.error(`broker failed to start: ${err instanceof Error ? err.message : String(err)}`);
      return problemResponse(err, '');
    }
    try {
      let person: Person | undefined;
      let by: Actor | undefined;
      if (options.people || options.admin) {
        const url = new URL(request.url);
        const pathAndQuery = `${url.pathname}${url.search}`;
        const check = options.admin
          ? await broker.admins(request.headers, pathAndQuery)
          : broker.people.check(request.headers, pathAndQuery);
        if (!check.allowed) {
          // A browser goes to sign in and comes back; a script hears 401.
          if (!prefersHtml(request.headers.get('accept'))) throw signInRequired();
          return { status: 302, headers: { Location: check.signIn, 'Cache-Control': 'no-store' } };
        }
        if ('person' in check) person = check.person;
        if ('by' in check) by = check.by;
      }
      return await run({ broker, request, context, person, by });
    } catch (err) {
      // Advice is attached here, at the edge: what a failure means came classified from below.
      explainError(err, broker.connections, broker.settings.publicUrl);
      return (
        options.onError?.(err, broker, request) ??
        problemResponse(err, broker.settings.publicUrl, broker.logger)
      );
    }
  };
  return traced(source, handle);
}

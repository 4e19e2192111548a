import { app } from '@azure/functions';
import { loadSettings } from '../lib/config/settings.js';
import { once } from '../lib/once.js';
import { routeTable } from './routes.js';

/** Azure Functions entry (`package.json` `main`): registers the route table with the Functions host. */
const settings = loadSettings(process.env);
// The services are composed on the first invocation (as before); importing them then, not here, keeps
// the code only that composition runs (providers, stores, the rotation pass…) out of the entry's load,
// so the worker registers the functions sooner. The first invocation pays for it either way.
const source = once(async () => {
  const { createDeclaredBroker } = await import('../lib/broker.js');
  return createDeclaredBroker(settings);
});
const table = routeTable(source, settings);

for (const r of table.http) {
  app.http(r.name, { route: r.route, methods: r.methods, authLevel: r.authLevel, handler: r.handler });
}
for (const t of table.timers) {
  app.timer(t.name, { schedule: t.schedule, handler: t.handler });
}

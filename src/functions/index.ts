import { app } from '@azure/functions';
import { createBroker } from '../lib/broker.js';
import { loadConnections } from '../lib/config/load.js';
import { loadSettings } from '../lib/config/settings.js';
import { once } from '../lib/once.js';
import { routeTable } from './routes.js';

/** Azure Functions entry (`package.json` `main`): registers the route table with the Functions host. */
const settings = loadSettings(process.env);
const source = once(async () =>
  createBroker({ settings, connections: loadConnections(settings).connections }),
);
const table = routeTable(source, settings);

for (const r of table.http) {
  app.http(r.name, { route: r.route, methods: r.methods, authLevel: r.authLevel, handler: r.handler });
}
for (const t of table.timers) {
  app.timer(t.name, { schedule: t.schedule, handler: t.handler });
}

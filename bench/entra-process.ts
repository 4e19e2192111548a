/**
 * The Entra simulator of `bench:rotation`, in a process of its own: its RSA signing and HTTP
 * parsing then do not queue on the broker's event loop, where they cost the pass as much time as
 * the broker's own work. Same simulator, same protocol, real HTTP on 127.0.0.1; the
 * parent drives it over IPC (`start` → port, `latency` on, `stats` → redemption counts).
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TestEntraSimulator } from '../test/fakes/entra.js';

export type EntraProcessRequest =
  | { type: 'start'; clientId: string; secret: string; redirectUri: string; latencyMs: number }
  | { type: 'latency'; on: boolean }
  | { type: 'stats' };

export type EntraProcessReply =
  | { type: 'started'; port: number }
  | { type: 'latency' }
  | { type: 'stats'; tokenRequests: number; redeemedTwice: number };

let sim: TestEntraSimulator | undefined;
let latencyMs = 0;
let latencyOn = false;

const reply = (message: EntraProcessReply) => process.send?.(message);

process.on('message', (message: EntraProcessRequest) => {
  if (message.type === 'start') {
    latencyMs = message.latencyMs;
    sim = new TestEntraSimulator({
      clients: [{ clientId: message.clientId, secret: message.secret, redirectUris: [message.redirectUri] }],
    });
    const server = createServer((req, res) => {
      // The provider's latency, on token calls only, once seeding is done: the answer leaves
      // `latencyMs` after the request came in, the simulator's own work (RSA signing) included, as a
      // provider answering in 50 ms does. The simulator writes its answer with one `end`.
      if (latencyOn && req.url?.includes('/oauth2/v2.0/token')) {
        const due = performance.now() + latencyMs;
        const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
        res.end = ((...args: unknown[]) => {
          setTimeout(() => end(...args), Math.max(0, due - performance.now()));
          return res;
        }) as ServerResponse['end'];
      }
      if (!sim!.handle(req, res)) res.writeHead(404).end();
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1', () =>
      reply({ type: 'started', port: (server.address() as AddressInfo).port }),
    );
    // The parent going away ends this process too.
    process.on('disconnect', () => process.exit(0));
  } else if (message.type === 'latency') {
    latencyOn = message.on;
    reply({ type: 'latency' });
  } else if (message.type === 'stats') {
    const redemptions = sim ? [...sim.stats.refreshRedemptions.values()] : [];
    reply({
      type: 'stats',
      tokenRequests: sim?.stats.tokenRequests ?? 0,
      redeemedTwice: redemptions.filter((n) => n > 1).length,
    });
  }
});

/**
 * The Entra simulator served standalone on 127.0.0.1 (random port), for tests that drive it over real
 * HTTP. `url` is the authority, prefix included (`{url}/{tenant}/oauth2/v2.0/token`, `{url}/graph/v1.0/me`).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EntraSimulator, type EntraSimulatorOptions } from '../../src/local/sandbox/entra-simulator.js';

export interface EntraFake {
  /** e.g. `http://127.0.0.1:41234`: the authority; the tenant goes in the path. */
  url: string;
  sim: EntraSimulator;
  close(): Promise<void>;
}

/** Starts a simulator; `clients` may be empty and registered later with `sim.registerClient`. */
export async function startEntraSimulator(options: Partial<EntraSimulatorOptions> = {}): Promise<EntraFake> {
  const prefix = options.prefix ?? '';
  const sim = new EntraSimulator({ clients: [], ...options });
  const server = createServer((req, res) => {
    if (!sim.handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    sim,
    // Kept-alive and hung connections would hold close() open; end them first.
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

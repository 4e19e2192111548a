/**
 * A plain HTTP forwarder on 127.0.0.1 in front of a provider, one per broker instance, so a test
 * knows which instance sent a request and can hold that instance's requests (`stall`) to catch it
 * in the middle of a refresh, i.e. while it holds the refresh lock.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StallingProxy {
  url: string;
  /** Requests forwarded so far. */
  forwarded(): number;
  /** Hold every request from now on (not forwarded). */
  stall(): void;
  /** Resolves once a request is being held. */
  stalledRequest(timeoutMs?: number): Promise<void>;
  /** Ends held requests without forwarding them (their sender is gone). */
  dropStalled(): void;
  close(): Promise<void>;
}

export async function startStallingProxy(target: string): Promise<StallingProxy> {
  const to = new URL(target);
  let stalling = false;
  let forwarded = 0;
  const held: ServerResponse[] = [];
  const onHeld = new Set<() => void>();

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    forwarded++;
    const upstream = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: to.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    if (!stalling) return forward(req, res);
    held.push(res);
    for (const notify of onHeld) notify();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    forwarded: () => forwarded,
    stall() {
      stalling = true;
    },
    stalledRequest(timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (held.length === 0) return;
          onHeld.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          onHeld.delete(check);
          reject(new Error('no request reached the stalled proxy'));
        }, timeoutMs);
        onHeld.add(check);
        check();
      });
    },
    dropStalled() {
      for (const res of held.splice(0)) res.destroy();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of held.splice(0)) res.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

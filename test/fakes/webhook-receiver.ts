import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceiverMode = 'ok' | 'error' | 'hang' | 'redirect';

/** A chat tool's incoming webhook on 127.0.0.1: records every POST, or fails on purpose. */
export interface WebhookReceiver {
  url: string;
  mode: ReceiverMode;
  /** Bodies of the POSTs answered 2xx, parsed. */
  events: Array<Record<string, unknown>>;
  /** Every request, whatever was answered (method and path). */
  requests: string[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver = {
    mode: 'ok' as ReceiverMode,
    events: [] as Array<Record<string, unknown>>,
    requests: [] as string[],
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests.push(`${req.method} ${req.url}`);
      switch (receiver.mode) {
        case 'ok':
          receiver.events.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('1');
          return;
        case 'error':
          res.writeHead(500).end('down');
          return;
        case 'redirect':
          res.writeHead(302, { Location: '/elsewhere' }).end();
          return;
        case 'hang':
          return; // never answers; the sender's timeout ends it
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}

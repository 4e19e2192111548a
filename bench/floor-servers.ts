/**
 * The two yardsticks of `npm run bench`, each run in its own child process by `token-vending.ts`:
 * `bare` answers the broker's token body with node:http alone; `floor` also builds, per request, what
 * Azure's Node.js worker builds around a handler (`HttpRequest`, `InvocationContext`, `HttpResponse`
 * with `jsonBody`, read back with `arrayBuffer()` as the worker's `toRpcHttp` does). No host can do
 * less inside the programming model, so `floor` is the bar the embedded host is measured against.
 *
 * Environment: BENCH_SERVER (`bare` | `floor`), PORT, BENCH_BODY (the JSON body to answer).
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import azureFunctions, { type HttpHandler, type HttpResponseInit } from '@azure/functions';

const { HttpRequest, HttpResponse, InvocationContext } = azureFunctions;

const kind = process.env.BENCH_SERVER;
const port = Number(process.env.PORT);
const bodyText = process.env.BENCH_BODY ?? '{}';
const jsonBody = JSON.parse(bodyText) as Record<string, unknown>;
/** What the broker's token route answers besides the body (src/functions/token.ts). */
const answerHeaders = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** The handler a function app would have: reads its query, answers JSON. */
const handler: HttpHandler = async (request) => {
  if (!request.query.get('connection')) return { status: 400 };
  return { status: 200, headers: answerHeaders, jsonBody };
};

const bareBody = Buffer.from(bodyText);
const bareHeaders = {
  ...answerHeaders,
  'content-type': 'application/json',
  'Content-Length': String(bareBody.length),
};

const server =
  kind === 'bare'
    ? http.createServer((_req, res) => {
        res.writeHead(200, bareHeaders);
        res.end(bareBody);
      })
    : http.createServer((req, res) => {
        const request = new HttpRequest({
          method: req.method ?? 'GET',
          url: `http://127.0.0.1:${port}${req.url ?? '/'}`,
          headers: headersOf(req),
        });
        const context = new InvocationContext({ invocationId: randomUUID(), functionName: 'token' });
        void Promise.resolve(handler(request, context)).then(async (result) => {
          const response =
            result instanceof HttpResponse ? result : new HttpResponse(result as HttpResponseInit);
          const body = Buffer.from(await response.arrayBuffer());
          for (const [name, value] of response.headers) res.setHeader(name, value);
          res.setHeader('Content-Length', body.length);
          res.writeHead(response.status);
          res.end(body);
        });
      });

if (kind !== 'bare' && kind !== 'floor') throw new Error('BENCH_SERVER must be bare or floor');
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});

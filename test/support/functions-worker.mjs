/**
 * A stand-in for the Azure Functions Node.js worker, run as its own process: loads a deployment
 * package's entry and invokes its functions the way the worker does, so a test or a benchmark drives
 * the package through @azure/functions' own code (registration, HttpRequest, InvocationContext,
 * HttpResponse), not through the broker's handlers directly.
 *
 *   node functions-worker.mjs <package dir> '<invocations JSON>'
 *
 * Invocations: `[{ "function": "token", "url": "https://host/api/token?connection=x", "headers": {} }]`,
 * run one after the other. Writes one JSON line per event to file descriptor 3 (stdout and stderr are
the package's, as the worker forwards them to the host's logs): `{"event":"registered",
 * "functions":[…]}` once the entry has loaded, then `{"event":"response","function",
 * "status","headers","body","at"}` per invocation (`at`: ms since the process started), and exits.
 *
 * What is the worker's, after azure-functions-nodejs-worker (src/setupCoreModule.ts and
 * src/eventHandlers/InvocationHandler.ts): `@azure/functions-core` is no installed package but a module
 * the worker serves by intercepting `Module.prototype.require`; `app.http` ends in its
 * `registerFunction(metadata, callback)`; an invocation asks the programming model (set with
 * `setProgrammingModel`) for an invocation model, which turns the host's RPC request into the
 * handler's arguments, runs the handler and turns its result back into RPC data. Not the worker's:
 * the gRPC channel to the host (invocations come from the command line), hooks, and the host's own
 * work before an invocation (routing, function keys). Only Node built-ins are imported here, so the
 * package resolves nothing from outside its own folder.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, invocationsJson = '[]'] = process.argv.slice(2);
if (!packageDir) {
  console.error('usage: node functions-worker.mjs <package dir> [invocations JSON]');
  process.exit(2);
}

const emit = (event) => writeSync(3, `${JSON.stringify(event)}\n`);
/** Functions as `registerFunction` received them: name → { metadata, callback }. */
const registered = new Map();
let programmingModel;

const coreApi = {
  version: '3.12.0',
  hostVersion: '4.1040.0',
  setProgrammingModel(model) {
    programmingModel = model;
  },
  getProgrammingModel: () => programmingModel,
  registerFunction(metadata, callback) {
    registered.set(metadata.name, { metadata, callback });
    return { dispose: () => registered.delete(metadata.name) };
  },
  registerHook: () => ({ dispose() {} }),
  log(level, category, message) {
    process.stderr.write(`[${category}/${level}] ${message}\n`);
  },
  Disposable: class {
    dispose() {}
  },
};

const originalRequire = Module.prototype.require;
Module.prototype.require = new Proxy(originalRequire, {
  apply(target, thisArg, args) {
    return args[0] === '@azure/functions-core' ? coreApi : Reflect.apply(target, thisArg, args);
  },
});

const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
await import(pathToFileURL(join(packageDir, manifest.main)).href);
if (!programmingModel)
  throw new Error('the entry set no programming model: @azure/functions ran in test mode');
// The worker asks for capabilities once the app has loaded (this also locks `app.setup`).
await programmingModel.getCapabilities({});
emit({ event: 'registered', functions: [...registered.keys()] });

for (const invocation of JSON.parse(invocationsJson)) {
  const fn = registered.get(invocation.function);
  if (!fn) throw new Error(`no function ${invocation.function} was registered`);
  const [triggerName] = Object.entries(fn.metadata.bindings).find(([, b]) => b.direction === 'in');
  const url = new URL(invocation.url);
  const invocationId = randomUUID();
  const coreCtx = {
    invocationId,
    metadata: fn.metadata,
    request: {
      invocationId,
      functionId: fn.metadata.name,
      // The HTTP trigger's data as the host sends it over RPC.
      inputData: [
        {
          name: triggerName,
          data: {
            http: {
              method: invocation.method ?? 'GET',
              url: url.href,
              headers: invocation.headers ?? {},
              query: Object.fromEntries(url.searchParams),
              params: {},
            },
          },
        },
      ],
      triggerMetadata: {},
    },
    state: undefined,
    log: coreApi.log,
  };
  const model = programmingModel.getInvocationModel(coreCtx);
  const { context, inputs } = await model.getArguments();
  const result = await model.invokeFunction(context, inputs, fn.callback);
  const response = await model.getResponse(context, result);
  const http = response.returnValue?.http ?? {};
  const body = http.body?.bytes ? Buffer.from(http.body.bytes).toString('utf8') : (http.body?.string ?? '');
  emit({
    event: 'response',
    function: invocation.function,
    status: Number(http.statusCode),
    headers: http.headers ?? {},
    body,
    at: performance.now(),
  });
}
process.exit(0);

// Micro-benchmark of the credential's hot path (`npm run bench` in clients/node, after `npm run build`):
// a cached getToken must cost no HTTP request and at most 5 µs; 100 concurrent getToken calls on a
// cold cache must cause one request. A local HTTP server plays the broker; exits 1 when a target is missed.
import { createServer } from 'node:http';
import { BrokerCredential } from '../dist/index.js';

let requests = 0;
const server = createServer((_req, res) => {
  requests++;
  const body = JSON.stringify({
    access_token: `tok-${requests}`,
    token_type: 'Bearer',
    expires_in: 3600,
    expires_on: Math.floor(Date.now() / 1000) + 3600,
    scope: 'https://graph.microsoft.com/User.Read',
  });
  setTimeout(() => res.end(body), 20);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;

const cold = new BrokerCredential({ url, connection: 'bench', functionKey: 'bench-key' });
await Promise.all(Array.from({ length: 100 }, () => cold.getToken('https://graph.microsoft.com/.default')));
const coldRequests = requests;

const credential = new BrokerCredential({ url, connection: 'bench', functionKey: 'bench-key' });
await credential.getToken([]);
const before = requests;
const results = {};
for (const [name, scopes] of [
  ['own scopes ([])', []],
  ['{resource}/.default', ['https://graph.microsoft.com/.default']],
]) {
  for (let i = 0; i < 20_000; i++) await credential.getToken(scopes); // warm-up
  const n = 200_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await credential.getToken(scopes);
  results[name] = Number(process.hrtime.bigint() - start) / n / 1000;
}
const cachedRequests = requests - before;
server.close();

const worst = Math.max(...Object.values(results));
for (const [name, us] of Object.entries(results))
  console.log(`cached getToken, ${name}: ${us.toFixed(3)} µs/call`);
console.log(`HTTP requests during ${2 * 220_000} cached calls: ${cachedRequests}`);
console.log(`100 concurrent getToken on a cold cache: ${coldRequests} request(s)`);
const ok = worst <= 5 && cachedRequests === 0 && coldRequests === 1;
console.log(ok ? 'targets met (≤ 5 µs, 0 requests, 1 request)' : 'TARGET MISSED');
process.exit(ok ? 0 : 1);

/**
 * `npm run bench:callers`: what validating a caller's Entra token costs per `/api/token` cache hit,
 * against the function key, in one run (two embedded hosts, alternating rounds, the JWKS cached).
 * Figures go in the README; nothing here asserts a speed.
 */
import { performance } from 'node:perf_hooks';
import { type Stack, startStack } from '../test/e2e/harness.js';
import { consent } from '../test/fakes/consent-client.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_ROUND = Number(process.env.BENCH_HITS ?? 1000);
const TENANT = '3c1e8f0a-6b2d-4c7e-9a51-2f4d8b6e0c13';
const API_ID = '0f6c2a9e-3d41-4b8a-a7e5-5c9d1e2b4f60';
const CALLER = {
  clientId: 'a1b2c3d4-0000-4000-8000-000000000001',
  oid: '11111111-1111-4111-8111-111111111111',
};
const SECRET = 'bench-caller-secret';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function connected(entra: boolean): Promise<Stack> {
  const stack = await startStack({
    connections: { support: { callers: [{ name: 'bench', objectId: CALLER.oid }] } },
    env: entra
      ? (simUrl) => ({
          CALLER_AUTH: 'entra',
          BROKER_TENANT_ID: TENANT,
          BROKER_API_CLIENT_ID: API_ID,
          BROKER_AUTHORITY: simUrl,
        })
      : {},
  });
  await consent(stack.url, stack.local.functionKey, 'support', { account: 'bench@contoso.com' });
  return stack;
}

async function callerToken(stack: Stack): Promise<string> {
  stack.sim.registerApi({ appId: API_ID, identifierUri: 'api://bench-broker', accessTokenVersion: 2 });
  stack.sim.registerClient({
    clientId: CALLER.clientId,
    secret: SECRET,
    redirectUris: [],
    servicePrincipalId: CALLER.oid,
    appRoles: { [API_ID]: ['Token.Request'] },
  });
  const res = await fetch(`${stack.simUrl}/${TENANT}/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: CALLER.clientId,
      client_secret: SECRET,
      scope: `${API_ID}/.default`,
    }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

async function round(call: () => Promise<Response>, into: number[]): Promise<void> {
  for (let i = 0; i < PER_ROUND; i++) {
    const t = performance.now();
    const res = await call();
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`answered ${res.status}`);
    into.push(performance.now() - t);
  }
}

async function main(): Promise<void> {
  const keyStack = await connected(false);
  const entraStack = await connected(true);
  try {
    const bearer = await callerToken(entraStack);
    const withKey = () => keyStack.api('/api/token?connection=support');
    const withBearer = () =>
      entraStack.api('/api/token?connection=support', {
        key: null,
        headers: { authorization: `Bearer ${bearer}` },
      });
    await round(withKey, []);
    await round(withBearer, []);
    const key: number[] = [];
    const token: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await round(withKey, key);
      await round(withBearer, token);
    }
    key.sort((a, b) => a - b);
    token.sort((a, b) => a - b);
    const fmt = (xs: number[]) =>
      `p50 ${percentile(xs, 50).toFixed(3)} ms, p99 ${percentile(xs, 99).toFixed(3)} ms`;
    console.log(
      `node ${process.version}, ${ROUNDS} alternating rounds of ${PER_ROUND} sequential cache hits each`,
    );
    console.log(`/api/token with the function key:        ${fmt(key)}`);
    console.log(`/api/token with a caller's Entra token:  ${fmt(token)}`);
    console.log(
      `validation cost (p50 difference): ${(percentile(token, 50) - percentile(key, 50)).toFixed(3)} ms; JWKS fetched ${entraStack.sim.stats.keyRequests} time(s)`,
    );
  } finally {
    await keyStack.close();
    await entraStack.close();
  }
}

await main();

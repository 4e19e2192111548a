/**
 * `npm run bench`: what `/api/token` costs, through the embedded host over real HTTP, against the
 * Entra simulator. Figures go in the README; nothing here asserts a speed.
 */
import { performance } from 'node:perf_hooks';
import { startStack } from '../test/e2e/harness.js';
import { consent } from '../test/fakes/consent-client.js';

const HITS = Number(process.env.BENCH_HITS ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const COLD_CALLERS = Number(process.env.BENCH_COLD_CALLERS ?? 200);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const stack = await startStack({ connections: { support: {} } });
  try {
    await consent(stack.url, stack.local.functionKey, 'support', { account: 'bench@contoso.com' });
    const call = () => stack.api('/api/token?connection=support').then((r) => r.arrayBuffer());
    await call();

    // 1. Cache hits over HTTP: latency per request, and throughput with concurrent callers.
    const upstreamBefore = stack.sim.stats.tokenRequests;
    const latencies: number[] = [];
    for (let i = 0; i < HITS; i++) {
      const t = performance.now();
      await call();
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < HITS) await call();
      }),
    );
    const rps = HITS / ((performance.now() - started) / 1000);
    const upstreamDuringHits = stack.sim.stats.tokenRequests - upstreamBefore;

    // 2. In-process cache hit: the service call alone, no HTTP.
    const tokens = stack.local.broker.tokens;
    const n = 200_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await tokens.getAccessToken('support');
    const serviceNs = ((performance.now() - t0) * 1e6) / n;

    // 3. Single flight: many callers on a cold cache.
    tokens.invalidate('support');
    const refreshBefore = stack.sim.stats.byGrant.refresh_token ?? 0;
    const t1 = performance.now();
    await Promise.all(Array.from({ length: COLD_CALLERS }, call));
    const coldMs = performance.now() - t1;
    const refreshes = (stack.sim.stats.byGrant.refresh_token ?? 0) - refreshBefore;

    console.log(`node ${process.version}, ${HITS} requests per figure`);
    console.log(
      `cache hit over HTTP, sequential: p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms`,
    );
    console.log(`cache hit over HTTP, ${CONCURRENCY} concurrent callers: ${Math.round(rps)} requests/s`);
    console.log(`upstream token requests during ${2 * HITS} cache hits: ${upstreamDuringHits}`);
    console.log(`cache hit in process (TokenService.getAccessToken): ${Math.round(serviceNs)} ns`);
    console.log(
      `${COLD_CALLERS} concurrent callers on a cold cache: ${refreshes} upstream refresh, all answered in ${coldMs.toFixed(0)} ms`,
    );
  } finally {
    await stack.close();
  }
}

await main();

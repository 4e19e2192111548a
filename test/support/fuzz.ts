import type * as fc from 'fast-check';

/**
 * fast-check settings shared by the property and fuzz tests. `npm test` runs `runs` cases (kept small
 * so CI stays quick); `npm run fuzz` sets `FUZZ_RUNS` to run them long. A failure prints its seed;
 * `FUZZ_SEED=<seed>` replays that run exactly.
 */
export function fuzzParams<T>(runs: number): fc.Parameters<T> {
  const params: fc.Parameters<T> = { numRuns: fuzzRuns(runs) };
  const seed = fuzzSeed();
  if (seed !== undefined) params.seed = seed;
  return params;
}

/** `FUZZ_RUNS` when set (scaled to at least `runs`), else `runs`. */
export function fuzzRuns(runs: number): number {
  const env = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(env) && env > 0 ? Math.max(env, runs) : runs;
}

export function fuzzSeed(): number | undefined {
  const env = process.env.FUZZ_SEED;
  if (env === undefined || env === '') return undefined;
  const seed = Number(env);
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, not ${JSON.stringify(env)}`);
  return seed;
}

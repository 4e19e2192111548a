import fc from 'fast-check';

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

/**
 * Provider bodies built from JSON-shaped objects: whole, any JSON, cut short anywhere (truncated
 * JSON), or any text at all.
 */
export function providerBodies(shaped: fc.Arbitrary<Record<string, unknown>>, anyText: fc.Arbitrary<string>) {
  return fc.oneof(
    shaped.map((o) => JSON.stringify(o)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    shaped.chain((o) => {
      const text = JSON.stringify(o);
      return fc.nat({ max: Math.max(0, text.length - 1) }).map((n) => text.slice(0, n));
    }),
    anyText,
  );
}

/** Any text, all of Unicode (lone surrogates included). */
export const anyText = fc.string({ unit: 'binary', maxLength: 120 });

/** A JSON value where a provider puts a field: right type, wrong type, or a number sent as a string. */
export const jsonField = fc.oneof(
  anyText,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.integer({ min: 0, max: 100_000 }).map(String),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

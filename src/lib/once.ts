/** Caches a successful async build; a failed one is forgotten, so the next call tries again. */
export function once<T>(build: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= build().catch((err: unknown) => {
      value = undefined;
      throw err;
    });
    return value;
  };
}

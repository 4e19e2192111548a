import type { SecretProperties, SecretStore } from '../../src/lib/store/secret-store.js';

/** The status page reads the whole list this long after a page served without listing (LIST_AFTER_MS, 200 ms). */
export const afterListDelay = () => new Promise((resolve) => setTimeout(resolve, 250));

/** A store whose whole-store listing waits for `release`: what a first page must not wait for. */
export function gatedStore(inner: SecretStore) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let lists = 0;
  const store: SecretStore = Object.assign(Object.create(inner) as SecretStore, {
    async listSecrets(): Promise<SecretProperties[]> {
      lists++;
      await gate;
      return inner.listSecrets();
    },
  });
  return { store, release, lists: () => lists };
}

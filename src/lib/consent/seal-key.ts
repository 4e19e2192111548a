import { newSealKey } from '../crypto/seal.js';
import { once } from '../once.js';
import { SEAL_KEY_SECRET, type SecretStore } from '../store/secret-store.js';

/**
 * The key that seals consent state must be the same on every instance (docs/design.md, "Stored data"), so it lives in the
 * store as `broker-seal-key`, generated on first use and then kept in memory.
 */
export class SealKeyProvider {
  /** The key, loaded (or created) on first use and kept; a failed load is retried next time. */
  readonly get: () => Promise<Buffer>;

  constructor(private readonly store: SecretStore) {
    this.get = once(() => this.load());
  }

  private async load(): Promise<Buffer> {
    const existing = await this.store.getSecret(SEAL_KEY_SECRET);
    if (existing) return Buffer.from(existing.value, 'base64');
    await this.store.setSecret(SEAL_KEY_SECRET, newSealKey().toString('base64'), {
      tags: { purpose: 'consent-state' },
    });
    // Two instances may generate at once; both then use whichever version the store kept last.
    const latest = await this.store.getSecret(SEAL_KEY_SECRET);
    return Buffer.from(latest!.value, 'base64');
  }
}

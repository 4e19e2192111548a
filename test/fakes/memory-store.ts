import { randomBytes } from 'node:crypto';
import { StoreError } from '../../src/lib/errors.js';
import { checkDate, checkName, checkTags } from '../../src/lib/store/limits.js';
import type {
  SecretProperties,
  SecretPropertiesUpdate,
  SecretStore,
  SetSecretOptions,
  StoredSecret,
} from '../../src/lib/store/secret-store.js';

/** One version: its properties as the port returns them, and the value. */
interface Version {
  props: SecretProperties;
  value: string;
}

/**
 * The `SecretStore` port in memory, for service tests: immutable versions (32 hex digits), tags
 * replaced whole, case-insensitive names that keep their first spelling, Key Vault's limits. It
 * passes the same contract suite as the file and Key Vault stores (store-contract.test.ts).
 */
export class MemorySecretStore implements SecretStore {
  readonly kind = 'memory';
  private readonly secrets = new Map<string, { name: string; versions: Version[] }>();

  constructor(private readonly now: () => number = Date.now) {}

  async getSecret(name: string, version?: string): Promise<StoredSecret | undefined> {
    const secret = this.secrets.get(checkName(name).toLowerCase());
    if (!secret) return undefined;
    const record =
      version === undefined
        ? secret.versions.findLast((v) => v.props.enabled)
        : secret.versions.find((v) => v.props.version === version);
    if (!record?.props.enabled) return undefined;
    return { ...structuredClone(record.props), value: record.value };
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretProperties> {
    const id = checkName(name).toLowerCase();
    const tags = checkTags(options.tags ?? {});
    const expiresOn = checkDate(options.expiresOn, 'expiresOn');
    const secret = this.secrets.get(id) ?? { name, versions: [] };
    this.secrets.set(id, secret);
    const now = new Date(this.now());
    const props: SecretProperties = {
      name: secret.name,
      version: randomBytes(16).toString('hex'),
      enabled: true,
      tags,
      createdOn: now,
      updatedOn: now,
    };
    if (expiresOn) props.expiresOn = expiresOn;
    secret.versions.push({ props: structuredClone(props), value });
    return props;
  }

  async updateSecretProperties(
    name: string,
    version: string,
    update: SecretPropertiesUpdate,
  ): Promise<SecretProperties> {
    const secret = this.secrets.get(checkName(name).toLowerCase());
    const props = secret?.versions.find((v) => v.props.version === version)?.props;
    if (!props) throw new StoreError('not_found', `secret ${name} has no such version`);
    if (update.tags !== undefined) props.tags = checkTags(update.tags);
    const expiresOn = checkDate(update.expiresOn, 'expiresOn');
    if (expiresOn) props.expiresOn = new Date(expiresOn);
    if (update.enabled !== undefined) props.enabled = update.enabled;
    props.updatedOn = new Date(this.now());
    return structuredClone(props);
  }

  async listSecrets(): Promise<SecretProperties[]> {
    return [...this.secrets.values()].map((s) => structuredClone(s.versions[s.versions.length - 1]!.props));
  }

  async listVersions(name: string): Promise<SecretProperties[]> {
    const secret = this.secrets.get(checkName(name).toLowerCase());
    return secret ? secret.versions.map((v) => structuredClone(v.props)) : [];
  }

  async deleteSecret(name: string): Promise<void> {
    this.secrets.delete(checkName(name).toLowerCase());
  }
}

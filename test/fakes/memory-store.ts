import { randomBytes } from 'node:crypto';
import { checkDate, checkName, checkTags } from '../../src/lib/store/limits.js';
import type {
  SecretProperties,
  SecretPropertiesUpdate,
  SecretStore,
  SetSecretOptions,
  StoredSecret,
} from '../../src/lib/store/secret-store.js';

interface Version {
  version: string;
  value: string;
  enabled: boolean;
  tags: Record<string, string>;
  expiresOn?: Date;
  createdOn: Date;
  updatedOn: Date;
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
        ? secret.versions.findLast((v) => v.enabled)
        : secret.versions.find((v) => v.version === version);
    if (!record?.enabled) return undefined;
    return { ...properties(secret.name, record), value: record.value };
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretProperties> {
    const id = checkName(name).toLowerCase();
    const tags = checkTags(options.tags ?? {});
    const expiresOn = checkDate(options.expiresOn, 'expiresOn');
    const secret = this.secrets.get(id) ?? { name, versions: [] };
    this.secrets.set(id, secret);
    const now = new Date(this.now());
    const record: Version = {
      version: randomBytes(16).toString('hex'),
      value,
      enabled: true,
      tags,
      createdOn: now,
      updatedOn: now,
    };
    if (expiresOn) record.expiresOn = new Date(expiresOn);
    secret.versions.push(record);
    return properties(secret.name, record);
  }

  async updateSecretProperties(
    name: string,
    version: string,
    update: SecretPropertiesUpdate,
  ): Promise<SecretProperties> {
    const secret = this.secrets.get(checkName(name).toLowerCase());
    const record = secret?.versions.find((v) => v.version === version);
    if (!secret || !record) throw new Error(`secret ${name} has no such version`);
    if (update.tags !== undefined) record.tags = checkTags(update.tags);
    const expiresOn = checkDate(update.expiresOn, 'expiresOn');
    if (expiresOn) record.expiresOn = new Date(expiresOn);
    if (update.enabled !== undefined) record.enabled = update.enabled;
    record.updatedOn = new Date(this.now());
    return properties(secret.name, record);
  }

  async listSecrets(): Promise<SecretProperties[]> {
    return [...this.secrets.values()].map((s) => properties(s.name, s.versions[s.versions.length - 1]!));
  }

  async listVersions(name: string): Promise<SecretProperties[]> {
    const secret = this.secrets.get(checkName(name).toLowerCase());
    return secret ? secret.versions.map((v) => properties(secret.name, v)) : [];
  }

  async deleteSecret(name: string): Promise<void> {
    this.secrets.delete(checkName(name).toLowerCase());
  }
}

function properties(name: string, v: Version): SecretProperties {
  const p: SecretProperties = {
    name,
    version: v.version,
    enabled: v.enabled,
    tags: { ...v.tags },
    createdOn: new Date(v.createdOn),
    updatedOn: new Date(v.updatedOn),
  };
  if (v.expiresOn) p.expiresOn = new Date(v.expiresOn);
  return p;
}

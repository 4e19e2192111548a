/**
 * The secret store port, shaped like Azure Key Vault's secrets API so that `KeyVaultSecretStore`
 * fits it without change: named secrets, immutable versions, string tags, an optional expiry.
 * A missing secret is `undefined`, not an error; an unreachable store throws
 * `BrokerError('upstream_unavailable')`.
 */
export interface SecretProperties {
  name: string;
  version: string;
  enabled: boolean;
  tags: Record<string, string>;
  expiresOn?: Date;
  createdOn: Date;
  updatedOn: Date;
}

export interface StoredSecret extends SecretProperties {
  value: string;
}

export interface SetSecretOptions {
  tags?: Record<string, string>;
  expiresOn?: Date;
}

export interface SecretPropertiesUpdate {
  tags?: Record<string, string>;
  expiresOn?: Date;
  enabled?: boolean;
}

export interface SecretStore {
  /** `file` (embedded) or `keyvault`; shown by `broker check` and the start-up lines. */
  readonly kind: string;
  /** Latest enabled version, or the given one; `undefined` when there is none. */
  getSecret(name: string, version?: string): Promise<StoredSecret | undefined>;
  /** Writes a new version; it becomes the latest. */
  setSecret(name: string, value: string, options?: SetSecretOptions): Promise<SecretProperties>;
  /** Changes tags/expiry/enabled of one version without a new value (tags are replaced whole). */
  updateSecretProperties(
    name: string,
    version: string,
    update: SecretPropertiesUpdate,
  ): Promise<SecretProperties>;
  /** Properties of the latest version of every secret; never values. */
  listSecrets(): Promise<SecretProperties[]>;
  /** Properties of every version of one secret, oldest first. */
  listVersions(name: string): Promise<SecretProperties[]>;
  deleteSecret(name: string): Promise<void>;
}

/** Secret name of a connection's refresh token (docs/design.md, "Stored data"). */
export const refreshTokenSecretName = (connectionId: string): string => `rt-${connectionId}`;

/** Secret that holds the key sealing consent state; the same on every instance. */
export const SEAL_KEY_SECRET = 'broker-seal-key';

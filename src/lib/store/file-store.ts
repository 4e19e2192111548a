import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { decrypt, encrypt, KEY_BYTES } from '../crypto/aead.js';
import { atomicWrite, isErrno, syncDir } from './atomic-file.js';
import { checkDate, checkName, checkTags, SECRET_NAME } from './limits.js';
import type {
  SecretProperties,
  SecretPropertiesUpdate,
  SecretStore,
  SetSecretOptions,
  StoredSecret,
} from './secret-store.js';

/**
 * The embedded secret store, used when Key Vault is not configured. It mirrors Key Vault's secrets
 * semantics (case-insensitive names, immutable versions, string tags with Key Vault's limits) so the
 * broker behaves the same against either store.
 *
 * Layout under the data dir (0700):
 * - `store.key`: 32 random bytes (0600), created once; losing it loses every value.
 * - `secrets/<lowercased name>.json` (0600): one file per secret with all its versions, each value
 *   sealed with AES-256-GCM under `store.key`, the lowercased secret name as additional
 *   authenticated data so a value copied into another secret's file does not decrypt.
 *
 * Concurrency: within one process, read-modify-write of a secret is serialized per name, and every
 * write is a temp file + fsync + rename, so readers never see a half-written file. Between processes
 * sharing a data dir the last writer of a file wins (a version written concurrently by another
 * process can be lost). Several broker processes may still share one data dir when they share a
 * cross-instance refresh lock (`AzureWebJobsStorage`, docs/scale-out.md): every write of an
 * `rt-{id}` then happens under that connection's lease, one writer at a time. `broker-seal-key` is
 * written once, on first use: let one instance create it before starting the others.
 */

const DEFAULT_MAX_VERSIONS = 25;
/** Files `listSecrets` reads before it lets other work run (a few milliseconds' worth). */
const LIST_BATCH = 32;
const FILE_FORMAT = 1;
const VERSION_ID = /^[0-9a-f]{32}$/;

const sealedValue = z.object({ iv: z.base64(), tag: z.base64(), data: z.base64() });
const isoDate = z.iso.datetime();
const versionRecord = z.object({
  version: z.string().regex(VERSION_ID),
  enabled: z.boolean(),
  tags: z.record(z.string(), z.string()),
  expiresOn: isoDate.optional(),
  createdOn: isoDate,
  updatedOn: isoDate,
  value: sealedValue,
});
const secretFile = z.object({
  format: z.literal(FILE_FORMAT),
  // Tells a wrong store.key apart from a corrupt file, which GCM alone cannot.
  keyCheck: z.string(),
  name: z.string().regex(SECRET_NAME),
  versions: z.array(versionRecord).min(1),
});
type VersionRecord = z.infer<typeof versionRecord>;
type SecretFile = z.infer<typeof secretFile>;

export interface FileSecretStoreOptions {
  /** Epoch milliseconds for createdOn/updatedOn; injected in tests. */
  now?: () => number;
  /** Versions kept per secret (newest first); default 25. */
  maxVersions?: number;
}

function properties(name: string, v: VersionRecord): SecretProperties {
  const props: SecretProperties = {
    name,
    version: v.version,
    enabled: v.enabled,
    tags: { ...v.tags },
    createdOn: new Date(v.createdOn),
    updatedOn: new Date(v.updatedOn),
  };
  if (v.expiresOn !== undefined) props.expiresOn = new Date(v.expiresOn);
  return props;
}

function latestEnabled(versions: VersionRecord[]): VersionRecord | undefined {
  for (let i = versions.length - 1; i >= 0; i--) {
    const v = versions[i]!;
    if (v.enabled) return v;
  }
  return undefined;
}

async function loadOrCreateKey(keyFile: string): Promise<Buffer> {
  try {
    return checkKeyBytes(keyFile, await readFile(keyFile));
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const key = randomBytes(KEY_BYTES);
  // Write a complete temp file then hard-link it into place: link fails if another process won the
  // race, and nobody ever reads a partly written key.
  const tmp = `${keyFile}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(key);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, keyFile);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await unlink(tmp).catch(() => {});
    return checkKeyBytes(keyFile, await readFile(keyFile));
  }
  await unlink(tmp).catch(() => {});
  await syncDir(path.dirname(keyFile));
  return key;
}

function checkKeyBytes(keyFile: string, bytes: Buffer): Buffer {
  if (bytes.length !== KEY_BYTES) {
    throw new Error(`secret store key file ${keyFile} is damaged: it must hold exactly ${KEY_BYTES} bytes`);
  }
  return bytes;
}

export class FileSecretStore implements SecretStore {
  readonly kind = 'file';
  private readonly secretsDir: string;
  private readonly keyCheck: string;
  /** Tail of each name's chain of read-modify-write operations. */
  private readonly queues = new Map<string, Promise<unknown>>();

  private constructor(
    readonly dataDir: string,
    private readonly keyFile: string,
    private readonly key: Buffer,
    private readonly now: () => number,
    private readonly maxVersions: number,
  ) {
    this.secretsDir = path.join(dataDir, 'secrets');
    this.keyCheck = createHmac('sha256', key)
      .update('broker file-store key check')
      .digest('hex')
      .slice(0, 32);
  }

  static async open(dataDir: string, options: FileSecretStoreOptions = {}): Promise<FileSecretStore> {
    const maxVersions = options.maxVersions ?? DEFAULT_MAX_VERSIONS;
    if (!Number.isInteger(maxVersions) || maxVersions < 1)
      throw new Error('maxVersions must be a positive integer');
    const dir = path.resolve(dataDir);
    // mkdir's mode is filtered by the umask; chmod what we created so it is 0700 exactly. An
    // existing folder keeps the mode its operator gave it.
    const created = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) await chmod(dir, 0o700);
    const secretsDir = path.join(dir, 'secrets');
    if ((await mkdir(secretsDir, { recursive: true, mode: 0o700 })) !== undefined)
      await chmod(secretsDir, 0o700);
    const keyFile = path.join(dir, 'store.key');
    const key = await loadOrCreateKey(keyFile);
    return new FileSecretStore(dir, keyFile, key, options.now ?? Date.now, maxVersions);
  }

  async getSecret(name: string, version?: string): Promise<StoredSecret | undefined> {
    const id = checkName(name).toLowerCase();
    const file = this.load(id);
    if (!file) return undefined;
    // Like Key Vault, a disabled version's value cannot be read, even by its version id.
    const record =
      version === undefined ? latestEnabled(file.versions) : file.versions.find((v) => v.version === version);
    if (!record?.enabled) return undefined;
    return { ...properties(file.name, record), value: this.decrypt(id, record) };
  }

  async setSecret(name: string, value: string, options: SetSecretOptions = {}): Promise<SecretProperties> {
    const id = checkName(name).toLowerCase();
    if (typeof value !== 'string') throw new Error(`secret ${name}: value must be a string`);
    const tags = checkTags(options.tags ?? {});
    const expiresOn = checkDate(options.expiresOn, 'expiresOn')?.toISOString();
    return this.serialize(id, async () => {
      const file: SecretFile = this.load(id) ?? {
        format: FILE_FORMAT,
        keyCheck: this.keyCheck,
        name,
        versions: [],
      };
      const now = new Date(this.now()).toISOString();
      const record: VersionRecord = {
        version: randomBytes(16).toString('hex'),
        enabled: true,
        tags,
        createdOn: now,
        updatedOn: now,
        value: this.encrypt(id, value),
      };
      if (expiresOn !== undefined) record.expiresOn = expiresOn;
      file.versions.push(record);
      file.versions = this.prune(file.versions);
      await this.save(id, file);
      return properties(file.name, record);
    });
  }

  async updateSecretProperties(
    name: string,
    version: string,
    update: SecretPropertiesUpdate,
  ): Promise<SecretProperties> {
    const id = checkName(name).toLowerCase();
    const tags = update.tags === undefined ? undefined : checkTags(update.tags);
    const expiresOn = checkDate(update.expiresOn, 'expiresOn')?.toISOString();
    if (update.enabled !== undefined && typeof update.enabled !== 'boolean')
      throw new Error('enabled must be a boolean');
    return this.serialize(id, async () => {
      const file = this.load(id);
      const record = file?.versions.find((v) => v.version === version);
      if (!file || !record) {
        const shown = typeof version === 'string' && VERSION_ID.test(version) ? ` ${version}` : '';
        throw new Error(`secret ${name} has no such version${shown}`);
      }
      if (tags !== undefined) record.tags = tags;
      if (expiresOn !== undefined) record.expiresOn = expiresOn;
      if (update.enabled !== undefined) record.enabled = update.enabled;
      record.updatedOn = new Date(this.now()).toISOString();
      await this.save(id, file);
      return properties(file.name, record);
    });
  }

  async listSecrets(): Promise<SecretProperties[]> {
    const ids: string[] = [];
    for (const entry of (await readdir(this.secretsDir)).sort()) {
      // Temp files start with a dot; anything else is not ours.
      if (entry.startsWith('.') || !entry.endsWith('.json')) continue;
      const id = entry.slice(0, -'.json'.length);
      if (SECRET_NAME.test(id) && id === id.toLowerCase()) ids.push(id);
    }
    const listed: SecretProperties[] = [];
    for (const [index, id] of ids.entries()) {
      // Reads are synchronous: let other work run between batches of files.
      if (index > 0 && index % LIST_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      // A secret deleted between readdir and read simply is not listed.
      const file = this.load(id);
      const newest = file?.versions[file.versions.length - 1];
      if (file && newest) listed.push(properties(file.name, newest));
    }
    return listed;
  }

  async listVersions(name: string): Promise<SecretProperties[]> {
    const id = checkName(name).toLowerCase();
    const file = this.load(id);
    return file ? file.versions.map((v) => properties(file.name, v)) : [];
  }

  async deleteSecret(name: string): Promise<void> {
    const id = checkName(name).toLowerCase();
    await this.serialize(id, async () => {
      try {
        await unlink(this.fileOf(id));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    });
  }

  /**
   * Keeps the newest `maxVersions` versions so that frequent rotation (a new refresh token on every
   * refresh) cannot grow a file without bound. Pruning runs only when a version is written, and the
   * new version is enabled and newest, so it never changes what `getSecret` answers.
   */
  private prune(versions: VersionRecord[]): VersionRecord[] {
    return versions.length <= this.maxVersions
      ? versions
      : versions.slice(versions.length - this.maxVersions);
  }

  private serialize<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => {});
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  private fileOf(id: string): string {
    return path.join(this.secretsDir, `${id}.json`);
  }

  private load(id: string): SecretFile | undefined {
    const fileName = this.fileOf(id);
    let text: string;
    try {
      text = readFileSync(fileName, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // JSON.parse's message quotes the input; say only where.
      throw new Error(`secret store file ${fileName} is corrupt: not valid JSON`);
    }
    const parsed = secretFile.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues[0]?.path.join('.') || '(root)';
      throw new Error(`secret store file ${fileName} is corrupt: unexpected content at ${where}`);
    }
    const file = parsed.data;
    if (file.keyCheck !== this.keyCheck) {
      throw new Error(
        `secret store file ${fileName} was written with another key: the key file ${this.keyFile} does not match the stored secrets`,
      );
    }
    if (file.name.toLowerCase() !== id) {
      throw new Error(`secret store file ${fileName} is corrupt: it holds another secret's name`);
    }
    return file;
  }

  private async save(id: string, file: SecretFile): Promise<void> {
    await atomicWrite(this.fileOf(id), `${JSON.stringify(file, null, 2)}\n`);
  }

  /** AES-256-GCM with the secret's name as AAD: a value copied into another secret's file does not decrypt. */
  private encrypt(id: string, value: string): VersionRecord['value'] {
    const { iv, tag, data } = encrypt(this.key, id, Buffer.from(value, 'utf8'));
    return { iv: iv.toString('base64'), tag: tag.toString('base64'), data: data.toString('base64') };
  }

  private decrypt(id: string, record: VersionRecord): string {
    const plaintext = decrypt(this.key, id, {
      iv: Buffer.from(record.value.iv, 'base64'),
      tag: Buffer.from(record.value.tag, 'base64'),
      data: Buffer.from(record.value.data, 'base64'),
    });
    // Nothing about the value travels with the error.
    if (!plaintext) {
      throw new Error(
        `secret store file ${this.fileOf(id)} is corrupt: version ${record.version} does not decrypt (altered, or copied from another secret)`,
      );
    }
    return plaintext.toString('utf8');
  }
}

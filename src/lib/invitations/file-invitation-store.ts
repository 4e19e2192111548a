import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { atomicWrite, ensurePrivateDir } from '../store/atomic-file.js';
import { type Invitation, type InvitationStore, invitationRecord, TOKEN_HASH } from './invitation-store.js';

/**
 * Invitations in the embedded store's data folder: `invitations/<token hash>.json`, one file each
 * (0600, folder 0700), written whole with the secret store's atomic write, so a reader never sees
 * half a record. Looking a token up is one file read; listing a connection's invitations reads the
 * folder, which is fine for the dozens a deployment without Table Storage has. Nothing here is
 * secret (the token is only its hash), so the files are not encrypted.
 *
 * One writer per invitation within a process (a chain per file); between processes sharing the
 * folder the last writer wins, as for the secret store's files.
 */
export class FileInvitationStore implements InvitationStore {
  private readonly dir: string;
  private readonly chains = new Map<string, Promise<unknown>>();
  private ready: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'invitations');
  }

  async create(invitation: Invitation): Promise<void> {
    const record = invitationRecord.parse(invitation);
    await this.serial(record.tokenHash, () => this.write(record));
  }

  async findByTokenHash(tokenHash: string): Promise<Invitation | undefined> {
    if (!TOKEN_HASH.test(tokenHash)) return undefined;
    return this.read(tokenHash);
  }

  async list(connection?: string): Promise<Invitation[]> {
    const all: Invitation[] = [];
    for (const hash of await this.hashes()) {
      const record = await this.read(hash);
      if (record && (connection === undefined || record.connection === connection)) all.push(record);
    }
    return all.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async update(
    connection: string,
    id: string,
    change: (current: Invitation) => Invitation | undefined,
  ): Promise<Invitation | undefined> {
    const found = (await this.list(connection)).find((i) => i.id === id);
    if (!found) return undefined;
    return this.serial(found.tokenHash, async () => {
      const current = await this.read(found.tokenHash);
      if (!current) return undefined;
      const next = change(current);
      if (!next) return current;
      const record = invitationRecord.parse({ ...next, id: current.id, tokenHash: current.tokenHash });
      await this.write(record);
      return record;
    });
  }

  private async hashes(): Promise<string[]> {
    try {
      return (await readdir(this.dir))
        .filter((name) => name.endsWith('.json'))
        .map((name) => name.slice(0, -'.json'.length))
        .filter((hash) => TOKEN_HASH.test(hash));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** A record, or undefined when absent or not one (a damaged file invites nobody). */
  private async read(tokenHash: string): Promise<Invitation | undefined> {
    let text: string;
    try {
      text = await readFile(this.fileOf(tokenHash), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const parsed = invitationRecord.safeParse(JSON.parse(text));
      return parsed.success && parsed.data.tokenHash === tokenHash ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  private async write(record: Invitation): Promise<void> {
    this.ready ??= ensurePrivateDir(this.dir).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    await this.ready;
    await atomicWrite(this.fileOf(record.tokenHash), `${JSON.stringify(record, null, 2)}\n`);
  }

  private fileOf(tokenHash: string): string {
    return path.join(this.dir, `${tokenHash}.json`);
  }

  private serial<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }
}

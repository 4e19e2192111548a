import { randomBytes } from 'node:crypto';
import { appendFileSync, linkSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { appendFile, open, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import type { Clock } from '../clock.js';
import { CONNECTION_ID } from '../config/connections.js';
import { BrokerError } from '../errors.js';
import { parseJson } from '../oauth/json.js';
import { firstAfter } from '../sorted.js';
import {
  atomicWrite,
  ensurePrivateDir,
  isErrno,
  syncDir,
  syncDirShared,
  writeNewDurable,
} from '../store/atomic-file.js';
import type {
  Actor,
  ChangeBatch,
  DefinitionKind,
  DefinitionRecord,
  DefinitionStore,
  ListOptions,
  ListPage,
  WriteCondition,
} from './definition-store.js';
import { checkCondition, checkName, preconditionFailed } from './definition-store.js';

/**
 * The embedded definition store: one file per definition in the data folder, written as the
 * embedded secret store writes its files (temp file + fsync + rename, 0600 in a 0700 folder).
 *
 * Layout under `{dataDir}/definitions/`: `connections/{id}.json`, `templates/{name}.json`, and
 * `changes.log`, one JSON line per write or delete: the change feed other processes on the same
 * folder poll (a `stat`, and a read only when it grew). The log is started afresh (a new file,
 * so a new inode) once it passes 1 MiB; a reader whose cursor names the old file is told to reset.
 *
 * Conditional writes are serialized per name: within the process by a queue, across processes (the
 * CLI beside the host, two hosts on one folder) by a lock file `{name}.json.lock` created
 * exclusively for the read-check-write, so of concurrent writes with one ETag exactly one wins. A
 * create is also a hard link, which fails when the name exists. A lock file left by a process that
 * died is taken over once it is 30 s old (a write holds it for milliseconds).
 */

const FORMAT = 1;
const MAX_LOG_BYTES = 1024 * 1024;
const FILE_NAME = /^([a-z0-9][a-z0-9-]{0,62})\.json$/;

const actor = z.object({ name: z.string(), id: z.string().optional() });
const recordFile = z.object({
  format: z.literal(FORMAT),
  kind: z.enum(['connection', 'template']),
  name: z.string().regex(CONNECTION_ID),
  definition: z.record(z.string(), z.unknown()),
  etag: z.string(),
  createdAt: z.string(),
  createdBy: actor,
  updatedAt: z.string(),
  updatedBy: actor,
});

/**
 * Tail of each file's chain of read-check-write operations, for the whole process: two stores
 * opened on one folder (tests, the CLI beside the host) still take turns.
 */
const queues = new Map<string, Promise<unknown>>();

/** A lock file older than this was left by a process that died mid-write. */
const LOCK_STALE_MS = 30_000;
/** How long a write waits for another process's lock before answering 503. */
const LOCK_WAIT_MS = 5_000;

const changeLine = z.object({ k: z.enum(['connection', 'template']), n: z.string() });

export class FileDefinitionStore implements DefinitionStore {
  readonly kind = 'file';
  private readonly logFile: string;
  private readonly names = new Map<string, { mtime: number; names: string[] }>();

  private constructor(
    private readonly root: string,
    private readonly clock: Pick<Clock, 'now'>,
  ) {
    this.logFile = path.join(root, 'changes.log');
  }

  static async open(dataDir: string, clock: Pick<Clock, 'now'>): Promise<FileDefinitionStore> {
    const root = path.join(path.resolve(dataDir), 'definitions');
    await ensurePrivateDir(path.resolve(dataDir));
    await ensurePrivateDir(root);
    await ensurePrivateDir(path.join(root, 'connections'));
    await ensurePrivateDir(path.join(root, 'templates'));
    return new FileDefinitionStore(root, clock);
  }

  async get(kind: DefinitionKind, name: string): Promise<DefinitionRecord | undefined> {
    return this.read(this.fileOf(kind, name));
  }

  async put(
    kind: DefinitionKind,
    name: string,
    definition: Record<string, unknown>,
    by: Actor,
    condition: WriteCondition = {},
  ): Promise<{ record: DefinitionRecord; created: boolean }> {
    const file = this.fileOf(kind, name);
    return this.serialize(file, async () => {
      const existing = await this.read(file);
      checkCondition(existing?.etag, condition);
      const now = new Date(this.clock.now()).toISOString();
      const record: DefinitionRecord = {
        kind,
        name,
        definition,
        etag: randomBytes(16).toString('hex'),
        createdAt: existing?.createdAt ?? now,
        createdBy: existing?.createdBy ?? by,
        updatedAt: now,
        updatedBy: by,
      };
      const text = JSON.stringify({ format: FORMAT, ...record });
      if (existing) await atomicWrite(file, text);
      else await this.create(file, text);
      await this.logChange(kind, name);
      return { record, created: !existing };
    });
  }

  async delete(kind: DefinitionKind, name: string, condition: WriteCondition = {}): Promise<boolean> {
    const file = this.fileOf(kind, name);
    return this.serialize(file, async () => {
      const existing = await this.read(file);
      if (!existing) {
        if (condition.ifMatch !== undefined) throw preconditionFailed();
        return false;
      }
      checkCondition(existing.etag, condition);
      try {
        await unlink(file);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await syncDir(path.dirname(file));
      await this.logChange(kind, name);
      return true;
    });
  }

  async list(kind: DefinitionKind, options: ListOptions): Promise<ListPage> {
    const dir = path.join(this.root, folderOf(kind));
    const names = await this.sortedNames(dir);
    const records: DefinitionRecord[] = [];
    for (let i = firstAfter(names, options.after); i < names.length; i++) {
      const name = names[i]!;
      // A definition deleted between readdir and read simply is not listed.
      const record = await this.read(path.join(dir, `${name}.json`));
      if (!record) continue;
      if (options.template !== undefined && record.definition.template !== options.template) continue;
      if (records.length === options.top) return { records, more: true };
      records.push(record);
    }
    return { records, more: false };
  }

  async changesSince(cursor?: string): Promise<ChangeBatch> {
    const now = await this.logPosition();
    if (cursor === undefined) return { changes: [], cursor: format(now) };
    const [inode, offset] = parse(cursor);
    if (inode !== now.inode || offset > now.size) return { changes: [], cursor: format(now), reset: true };
    if (offset === now.size) return { changes: [], cursor };
    const fh = await open(this.logFile, 'r');
    let text: string;
    try {
      const buffer = Buffer.alloc(now.size - offset);
      await fh.read(buffer, 0, buffer.length, offset);
      text = buffer.toString('utf8');
    } finally {
      await fh.close();
    }
    // A line still being appended has no newline yet: read it next time.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const changes = complete
      .split('\n')
      .filter((line) => line.length > 0)
      .flatMap((line) => {
        const parsed = changeLine.safeParse(parseJson(line));
        return parsed.success ? [{ kind: parsed.data.k, name: parsed.data.n }] : [];
      });
    return { changes, cursor: format({ inode, size: offset + Buffer.byteLength(complete) }) };
  }

  /**
   * The folder's definition names, sorted. Kept while the folder's mtime stays the same (every
   * create, replace and delete here or in another process changes it), so paging through 100,000
   * is not a `readdir` and a sort per page. The stat comes first: a file added during the `readdir`
   * changes the mtime after it, and the next call reads again. On a file system with whole-second
   * timestamps a later change could share the mtime, so there a listing made within 2 s of it is
   * not kept.
   */
  private async sortedNames(dir: string): Promise<string[]> {
    const mtime = (await stat(dir)).mtimeMs;
    const kept = this.names.get(dir);
    if (kept?.mtime === mtime) return kept.names;
    const readAt = Date.now();
    const names: string[] = [];
    // `test` and a slice, not `exec`: no match array per file, which at 100,000 files was most of the time.
    for (const f of await readdir(dir)) if (FILE_NAME.test(f)) names.push(f.slice(0, -'.json'.length));
    names.sort();
    if (mtime % 1000 !== 0 || readAt - mtime > 2000) this.names.set(dir, { mtime, names });
    else this.names.delete(dir);
    return names;
  }

  private fileOf(kind: DefinitionKind, name: string): string {
    return path.join(this.root, folderOf(kind), `${checkName(name)}.json`);
  }

  private async read(file: string): Promise<DefinitionRecord | undefined> {
    let text: string;
    try {
      // Synchronous, as the secret store reads: a local file of a few hundred bytes.
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    const parsed = recordFile.safeParse(parseJson(text));
    if (!parsed.success) throw new Error(`definition file ${file} is damaged`);
    const { format: _format, ...record } = parsed.data;
    return record;
  }

  /**
   * A new file, or 412 when another process created it meanwhile: the content written and fsynced
   * under a temporary name, published by a hard link (which fails if the name exists), then one
   * directory sync shared with concurrent writers.
   */
  private async create(file: string, text: string): Promise<void> {
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.new`;
    try {
      await writeNewDurable(tmp, text);
      linkSync(tmp, file);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw preconditionFailed();
      throw err;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // Never created, or already gone.
      }
    }
    await syncDirShared(path.dirname(file));
  }

  private async logChange(kind: DefinitionKind, name: string): Promise<void> {
    let size = 0;
    try {
      size = statSync(this.logFile).size;
    } catch {
      // Not there yet: the append creates it.
    }
    // Started afresh as a new file (a new inode), so every reader's cursor says "reset".
    if (size > MAX_LOG_BYTES) await atomicWrite(this.logFile, '');
    appendFileSync(this.logFile, `${JSON.stringify({ k: kind, n: name })}\n`, { mode: 0o600 });
  }

  private async logPosition(): Promise<{ inode: number; size: number }> {
    try {
      const s = await stat(this.logFile);
      return { inode: s.ino, size: s.size };
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await appendFile(this.logFile, '', { mode: 0o600 });
      const s = await stat(this.logFile);
      return { inode: s.ino, size: s.size };
    }
  }

  private serialize<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = queues.get(key) ?? Promise.resolve();
    const locked = () => withLockFile(`${key}.lock`, work);
    const run = previous.then(locked, locked);
    const tail = run.catch(() => {});
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  }
}

/** Runs `work` holding `lock`, a file only one process can create (`wx`) at a time. */
async function withLockFile<T>(lock: string, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      break;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > LOCK_STALE_MS) {
      await unlink(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw new BrokerError('upstream_unavailable', 'Another process is writing this definition; retry.', {
        retryAfter: 1,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
  }
  try {
    return await work();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

function folderOf(kind: DefinitionKind): string {
  return kind === 'connection' ? 'connections' : 'templates';
}

function format(position: { inode: number; size: number }): string {
  return `${position.inode}:${position.size}`;
}

function parse(cursor: string): [number, number] {
  const [inode, size] = cursor.split(':').map(Number);
  return Number.isSafeInteger(inode) && Number.isSafeInteger(size) ? [inode!, size!] : [-1, -1];
}

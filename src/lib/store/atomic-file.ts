import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  constants as fsConstants,
  fsync,
  openSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Writing files of the embedded stores (secrets, connection definitions) so that a crash or a
 * concurrent reader never sees half a file, and nobody but the broker's user can read them.
 */

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

const fsyncFd = promisify(fsync);

/*
 * Only the fsyncs go to libuv's thread pool; the other calls on a secret's file are synchronous.
 * Opening, reading, writing and renaming a file of a few kilobytes in a local folder takes
 * microseconds, less than one hand-off to the thread pool and back, and a rotation pass made
 * seventeen of those per connection (on a busy machine each one a context switch). The data dir is
 * meant to be local: on a network share each such call would hold the event loop for a round trip.
 */

/** Writes `data` to `file` so that readers see either the old or the new content, never a mix. */
export async function atomicWrite(file: string, data: string | Buffer): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    // The temp file is written as any new durable file; the rename then publishes it whole.
    await writeNewDurable(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Not there, or not ours to remove: the write's own error is the one to report.
    }
    throw err;
  }
  await syncDirAfter(path.dirname(file));
}

/**
 * Writes a new file `file` (which must not exist) and fsyncs its content, without making its name
 * durable: for a file that is then published under another name by `link` or `rename`, whose
 * directory sync (`syncDirShared`) covers both.
 */
export async function writeNewDurable(file: string, data: string | Buffer): Promise<void> {
  const fd = openSync(file, 'wx', 0o600);
  try {
    // Explicit, so a permissive umask or an odd default cannot widen it.
    fchmodSync(fd, 0o600);
    writeFileSync(fd, data);
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** `syncDir`, shared between concurrent callers (see `syncDirAfter`). */
export function syncDirShared(dir: string): Promise<void> {
  return syncDirAfter(dir);
}

/** Per directory: the fsync under way, and the one that follows it, shared by all who wait. */
const dirSyncs = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();

/**
 * Makes renames already done in `dir` durable, sharing one directory fsync between concurrent
 * writers (a group commit): a rotation pass writes eight secrets at once, and an fsync each was a
 * third of every write's round trips. A sync under way may have begun before this caller's rename,
 * so the caller waits for the next one, which everyone arriving meanwhile shares.
 */
function syncDirAfter(dir: string): Promise<void> {
  let state = dirSyncs.get(dir);
  if (!state) {
    state = {};
    dirSyncs.set(dir, state);
  }
  const current = state;
  const start = (): Promise<void> => {
    const run = syncDir(dir).finally(() => {
      if (current.running === run) current.running = undefined;
      if (!current.running && !current.queued && dirSyncs.get(dir) === current) dirSyncs.delete(dir);
    });
    current.running = run;
    return run;
  };
  if (!current.running) return start();
  current.queued ??= current.running.then(() => {
    current.queued = undefined;
    return start();
  });
  return current.queued;
}

/** Makes a rename durable across a crash; not every platform can open a directory, which is fine. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fd = openSync(dir, fsConstants.O_RDONLY);
    try {
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort: Windows cannot fsync a directory.
  }
}

/** `dir` (and parents) created 0700 exactly; an existing folder keeps the mode its operator gave it. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  // mkdir's mode is filtered by the umask; chmod what we created so it is 0700 exactly.
  if ((await mkdir(dir, { recursive: true, mode: 0o700 })) !== undefined) await chmod(dir, 0o700);
}

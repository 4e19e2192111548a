import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The key the embedded host requires on function-level routes: `BROKER_FUNCTION_KEY`, or one
 * generated once into the data dir (mode 0600) so it survives restarts.
 */
export async function resolveFunctionKey(
  configured: string | undefined,
  dataDir: string,
): Promise<{ key: string; source: string }> {
  if (configured) return { key: configured, source: 'BROKER_FUNCTION_KEY' };
  const path = join(dataDir, 'function-key');
  try {
    const key = (await readFile(path, 'utf8')).trim();
    if (key.length >= 16) return { key, source: path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32).toString('base64url');
  await writeFile(path, `${key}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return { key, source: `${path} (generated)` };
}

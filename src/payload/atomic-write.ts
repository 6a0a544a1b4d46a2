/**
 * Writes a file so that readers see either the old file or the whole new one, never a
 * part: a temp file beside the target, written, fsynced, renamed, then the directory
 * fsynced so the rename itself survives a crash. A failed write leaves no temp file.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentError } from '../errors.js';

/** Temp files start with this, so a start-up sweep can find and remove leftovers. */
export const TEMP_PREFIX = '.configdrive-tmp-';

/**
 * How much survives a crash: `all` (the default) the file and its name; `file` the
 * content is on disk before the rename, but the rename itself may be lost (the previous
 * file then stays, whole); `none` for a cache, where the file may be lost or damaged.
 * Readers never see a partial file in any case while the system runs.
 */
export type Durability = 'all' | 'file' | 'none';

/** `gid`, when given, is set before the rename: QEMU must never see the file with the wrong group. */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o640, gid?: number, durability: Durability = 'all'): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}-${basename(path)}`);
  try {
    // 'wx': never follow or reuse something already there under the temp name.
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      // open() applies the umask; the mode is part of the contract (0640 for ISOs).
      await handle.chmod(mode);
      if (gid !== undefined) await handle.chown(-1, gid);
      if (durability !== 'none') await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new AgentError('IO_ERROR', `Cannot write "${path}": ${code}`, { cause: err, details: { errno: code } });
  }
  if (durability === 'all') await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

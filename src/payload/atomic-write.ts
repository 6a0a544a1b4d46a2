/**
 * Writes a file so that readers see either the old file or the whole new one, never a
 * part: a temp file beside the target, written, fsynced, renamed, then the directory
 * fsynced so the rename itself survives a crash. A failed write leaves no temp file.
 */
import { closeSync, fchmodSync, fstatSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { AgentError } from '../errors.js';

/** Temp files start with this, so a start-up sweep can find and remove leftovers. */
export const TEMP_PREFIX = '.configdrive-tmp-';

/**
 * How much survives a crash: `all` (the default) the file and its name; `file` the
 * content is on disk before the rename, but the rename itself may be lost (the previous
 * file then stays, whole). A cache file, which may be lost, is writeCacheFileSync's job.
 * Readers never see a partial file in any case while the system runs.
 */
export type Durability = 'all' | 'file';

/** `gid`, when given, is set before the rename: QEMU must never see the file with the wrong group. */
export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o640, gid?: number, durability: Durability = 'all'): Promise<void> {
  const dir = dirname(path);
  const temp = tempPath(path);
  try {
    // 'wx': never follow or reuse something already there under the temp name.
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      // open() applies the umask; the mode is part of the contract (0640 for ISOs).
      await handle.chmod(mode);
      if (gid !== undefined) await handle.chown(-1, gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw writeFailed(path, err);
  }
  if (durability === 'all') await syncDirectory(dir);
}

/**
 * A cache file (durability `none`) written on the calling thread: for the build
 * threads, where a few blocking system calls cost less than as many trips through
 * libuv's thread pool. Same guarantee while the system runs: the whole file or none of
 * it. Returns nothing to read back: the size the file system reports for the open file
 * is checked against what was written, which catches a short write without reading
 * the bytes again (they were checked by our reader before they came here).
 */
export function writeCacheFileSync(path: string, data: Uint8Array, mode: number): void {
  const temp = tempPath(path);
  try {
    const fd = openSync(temp, 'wx', mode);
    try {
      writeFileSync(fd, data);
      fchmodSync(fd, mode);
      const size = fstatSync(fd).size;
      if (size !== data.length) throw Object.assign(new Error(`${String(size)} of ${String(data.length)} bytes on disk`), { code: 'ESHORT' });
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw writeFailed(path, err);
  }
}

/**
 * Unique among this process's threads by pid, thread and a counter; 'wx' refuses a name
 * that exists all the same (a leftover of a crashed process with the same pid, which
 * start-up removes anyway). Not random: a random name costs a call into OpenSSL.
 */
let tempCounter = 0;

function tempPath(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${String(process.pid)}.${String(threadId)}.${String(tempCounter++)}-${basename(path)}`);
}

function writeFailed(path: string, err: unknown): AgentError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
  return new AgentError('IO_ERROR', `Cannot write "${path}": ${code}`, { cause: err, details: { errno: code } });
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

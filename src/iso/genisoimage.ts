/**
 * The classic tool behind the same interface, for users who want it: the tree is staged
 * in a private directory and packed by `genisoimage -R -J -V LABEL`. Slower (a process
 * and a staging copy per image) and bigger (it pads 150 sectors), but the reference
 * every other implementation is compared with.
 */
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentError } from '../errors.js';
import { buildTree, validateVolumeId, type IsoTree } from './tree.js';
import type { IsoWriteOptions } from './writer.js';

export const GENISOIMAGE = '/usr/bin/genisoimage';

export async function writeWithGenisoimage(tree: IsoTree, options: IsoWriteOptions = {}): Promise<Uint8Array> {
  const label = options.volumeId ?? 'config-2';
  validateVolumeId(label);
  // Same checks as the builtin writer, so both refuse the same trees.
  buildTree(tree);
  const stage = await mkdtemp(join(tmpdir(), 'configdrive-stage-'));
  try {
    const root = join(stage, 'root');
    await mkdir(root, { mode: 0o700 });
    for (const dir of tree.directories ?? []) await mkdir(join(root, dir), { recursive: true });
    for (const [path, content] of tree.files) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content, { mode: 0o444 });
      if (options.timestamp !== undefined) await utimes(join(root, path), options.timestamp, options.timestamp);
    }
    const out = join(stage, 'image.iso');
    // Loaded on first use: execa and its dependencies take about 12 MB in every thread
    // that imports them, and most daemons (and all build threads) never run genisoimage.
    const { execa } = await import('execa');
    const result = await execa(GENISOIMAGE, ['-quiet', '-R', '-J', '-input-charset', 'utf-8', '-V', label, '-o', out, root], { reject: false, stdin: 'ignore' });
    if (result.exitCode !== 0) {
      throw new AgentError('ISO_WRITER_FAILED', `genisoimage exited ${String(result.exitCode)}: ${String(result.stderr).trim().split('\n').slice(-3).join(' / ')}`);
    }
    return new Uint8Array(await readFile(out));
  } catch (err) {
    if (err instanceof AgentError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new AgentError('ISO_WRITER_FAILED', code === 'ENOENT' ? `${GENISOIMAGE} is not installed (Debian package genisoimage)` : `genisoimage failed: ${String(err)}`, { cause: err });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * A pre-built config drive as a payload source: an image `Payload.build` left in the
 * store, or one an operator made (`configdrive build -o`) in a directory the
 * configuration allows. The daemon runs as root and would otherwise read any file a
 * caller names, so a path is taken only inside those directories (after resolving
 * symlinks), only as a regular file, only if it reads as an ISO9660 volume with the
 * drive's label and a meta_data.json cloud-init will accept. The bytes are then copied
 * into the store like any built image: the caller's file is never handed to QEMU.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, sep } from 'node:path';
import { META_DATA_PATH } from '../cloudinit/index.js';
import type { DriveTree } from '../cloudinit/types.js';
import { AgentError, invalid } from '../errors.js';
import { readImageFile, readIsoImage } from '../iso/index.js';

export interface PrebuiltDrive {
  readonly kind: 'prebuilt';
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly tree: DriveTree;
  readonly instanceId: string;
}


function refuse(message: string): never {
  throw invalid('INVALID_PARAMS', 'the pre-built image cannot be used', [{ path: 'params.image', message }]);
}

async function inside(path: string, dirs: readonly string[]): Promise<boolean> {
  for (const dir of dirs) {
    const real = await realpath(dir).catch(() => undefined);
    if (real !== undefined && path.startsWith(real.endsWith(sep) ? real : real + sep)) return true;
  }
  return false;
}

export async function loadPrebuiltDrive(path: string, allowedDirs: readonly string[], label: string): Promise<PrebuiltDrive> {
  if (!isAbsolute(path)) refuse(`${JSON.stringify(path.slice(0, 200))} is not an absolute path`);
  const real = await realpath(path).catch((err: NodeJS.ErrnoException) => refuse(`${path}: ${err.code === 'ENOENT' ? 'no such file' : `cannot be resolved (${String(err.code)})`}`));
  if (!(await inside(real, allowedDirs))) {
    refuse(`${path} is outside the directories pre-built images may come from (the store's builds and the imageDirs setting)`);
  }
  let image;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readImageFile(real));
    image = readIsoImage(bytes);
  } catch (err) {
    // Not a regular file, too large, or not ISO9660: the caller's mistake, named as such.
    if (err instanceof AgentError && err.code === 'ISO_MALFORMED') refuse(`${path} is not a readable ISO9660 volume: ${err.message}`);
    throw err;
  }
  if (image.volumeId !== label) refuse(`${path} is labelled ${JSON.stringify(image.volumeId)}, not ${JSON.stringify(label)}: the guest would ignore it`);
  const meta = image.files.get(META_DATA_PATH);
  if (meta === undefined) refuse(`${path} has no ${META_DATA_PATH}: cloud-init would reject the drive`);
  let uuid: unknown;
  try {
    uuid = (JSON.parse(Buffer.from(meta).toString('utf8')) as { uuid?: unknown }).uuid;
  } catch {
    refuse(`${path}: ${META_DATA_PATH} is not valid JSON: cloud-init would reject the drive`);
  }
  if (typeof uuid !== 'string' || uuid === '') refuse(`${path}: ${META_DATA_PATH} has no uuid (the instance-id)`);
  return { kind: 'prebuilt', path: real, bytes, tree: image.files, instanceId: uuid };
}

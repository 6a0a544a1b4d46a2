/** ISO9660 images: the only module that knows about sectors. */
import { writeWithGenisoimage } from './genisoimage.js';
import type { IsoTree } from './tree.js';
import { writeIsoImage, type IsoWriteOptions } from './writer.js';

export { buildTree, ISO_LIMITS, validateVolumeId, type IsoTree } from './tree.js';
export { planImage, writeIsoImage, writeIsoImageToFile, type IsoWriteOptions } from './writer.js';
export { readImageFile, readIsoFile, readIsoImage, MAX_IMAGE_BYTES, type IsoImage, type NameSpace, type ReadOptions } from './reader.js';
export { writeWithGenisoimage } from './genisoimage.js';

export type WriterName = 'builtin' | 'genisoimage';
export const WRITER_NAMES: readonly WriterName[] = ['builtin', 'genisoimage'];

export interface IsoWriter {
  readonly name: WriterName;
  write(tree: IsoTree, options?: IsoWriteOptions): Promise<Uint8Array>;
}

export function createIsoWriter(name: WriterName): IsoWriter {
  if (name === 'genisoimage') return { name, write: writeWithGenisoimage };
  return { name, write: async (tree, options) => writeIsoImage(tree, options) };
}

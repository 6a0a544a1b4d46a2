/**
 * The reader the agent verifies drives with before a guest sees them. It trusts nothing
 * in the image: every offset and length is checked against the image before use, every
 * directory extent and continuation area is visited at most once (a loop is an error,
 * never a hang), and the total work is bounded by the image size and fixed limits.
 * File contents are views into the input bytes, not copies.
 */
import { readFile, stat } from 'node:fs/promises';
import { AgentError } from '../errors.js';
import { SECTOR } from './writer.js';

export type NameSpace = 'rockridge' | 'joliet' | 'iso9660';

export interface IsoImage {
  readonly volumeId: string;
  readonly extensions: { readonly rockRidge: boolean; readonly joliet: boolean };
  /** Which names `files` and `directories` use. */
  readonly names: NameSpace;
  readonly files: Map<string, Uint8Array>;
  /** Every directory but the root, parents first. */
  readonly directories: string[];
}

export interface ReadOptions {
  /** Default: Rock Ridge when present, else Joliet, else plain ISO9660. */
  readonly names?: NameSpace | 'best';
}

const LIMITS = { descriptors: 64, entries: 200_000, directories: 65_535, depth: 64, continuations: 32 } as const;
/** An image the agent reads is a config drive: a few KB, at most what the writer allows. */
export const MAX_IMAGE_BYTES = 1024 * 1024 * 1024 + 64 * 1024 * 1024;

function malformed(message: string): AgentError {
  return new AgentError('ISO_MALFORMED', `not a readable ISO9660 image: ${message}`);
}

interface Record {
  readonly extent: number;
  readonly size: number;
  readonly dir: boolean;
  readonly id: Buffer;
  /** System use area: [start, end) in the image. */
  readonly suStart: number;
  readonly suEnd: number;
}

class Image {
  readonly b: Buffer;
  constructor(bytes: Uint8Array) {
    this.b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Checks that [start, start+length) lies in the image. */
  range(start: number, length: number, what: string): void {
    if (!Number.isSafeInteger(start) || start < 0 || length < 0 || start + length > this.b.length) {
      throw malformed(`${what} (bytes ${String(start)}..${String(start + length)}) lies past the end of the ${String(this.b.length)}-byte image`);
    }
  }

  record(at: number, what: string): Record {
    const length = this.b[at]!;
    if (length < 34) throw malformed(`${what}: directory record length ${String(length)} is below the minimum of 34`);
    this.range(at, length, what);
    const idLength = this.b[at + 32]!;
    if (33 + idLength > length) throw malformed(`${what}: identifier length ${String(idLength)} overruns its ${String(length)}-byte record`);
    const flags = this.b[at + 25]!;
    if ((flags & 0x80) !== 0) throw malformed(`${what}: multi-extent files are not supported`);
    const suStart = at + 33 + idLength + (idLength % 2 === 0 ? 1 : 0);
    return {
      extent: this.b.readUInt32LE(at + 2),
      size: this.b.readUInt32LE(at + 10),
      dir: (flags & 0x02) !== 0,
      id: this.b.subarray(at + 33, at + 33 + idLength),
      suStart: Math.min(suStart, at + length),
      suEnd: at + length,
    };
  }
}

interface Susp {
  name?: string;
  /** CL: a relocated directory's real extent (deep-tree relocation by mkisofs). */
  childLink?: number;
  relocated: boolean;
  signatures: Set<string>;
}

/** The SUSP entries of one record, following CE continuations (each area at most once). */
function readSusp(img: Image, start: number, end: number, where: string): Susp {
  const out: Susp = { relocated: false, signatures: new Set() };
  const nameParts: Buffer[] = [];
  const seen = new Set<number>();
  let pos = start;
  let stop = end;
  for (let hops = 0; ; ) {
    let next: { at: number; length: number } | undefined;
    while (pos + 4 <= stop) {
      const sig = img.b.toString('latin1', pos, pos + 2);
      const length = img.b[pos + 2]!;
      if (length < 4 || pos + length > stop) break; // padding or a damaged tail: ignored, as Linux does
      out.signatures.add(sig);
      if (sig === 'NM' && length >= 5) {
        const flags = img.b[pos + 4]!;
        if ((flags & 0x06) === 0) nameParts.push(img.b.subarray(pos + 5, pos + length));
      } else if (sig === 'CE' && length >= 28) {
        const block = img.b.readUInt32LE(pos + 4);
        const offset = img.b.readUInt32LE(pos + 12);
        const size = img.b.readUInt32LE(pos + 20);
        next = { at: block * SECTOR + offset, length: size };
      } else if (sig === 'CL' && length >= 12) {
        out.childLink = img.b.readUInt32LE(pos + 4);
      } else if (sig === 'RE') {
        out.relocated = true;
      } else if (sig === 'ST') {
        break;
      }
      pos += length;
    }
    if (next === undefined) break;
    if (++hops > LIMITS.continuations || seen.has(next.at)) throw malformed(`${where}: continuation areas loop or chain more than ${String(LIMITS.continuations)} times`);
    seen.add(next.at);
    img.range(next.at, next.length, `${where}: continuation area`);
    pos = next.at;
    stop = next.at + next.length;
  }
  if (nameParts.length > 0) out.name = Buffer.concat(nameParts).toString('utf8');
  return out;
}

function isoName(id: Buffer): string {
  return id.toString('latin1').replace(/;\d+$/, '').replace(/\.$/, '');
}

function jolietName(id: Buffer): string {
  if (id.length % 2 !== 0) throw malformed(`Joliet name of odd length ${String(id.length)}`);
  let s = '';
  for (let i = 0; i < id.length; i += 2) s += String.fromCharCode(id.readUInt16BE(i));
  return s.replace(/;\d+$/, '');
}

interface Descriptors {
  primary: number;
  joliet?: number;
}

function descriptors(img: Image): Descriptors {
  if (img.b.length < 17 * SECTOR) throw malformed(`the image is ${String(img.b.length)} bytes, too small for a volume descriptor at sector 16`);
  let primary: number | undefined;
  let joliet: number | undefined;
  for (let s = 16; ; s++) {
    if (s >= 16 + LIMITS.descriptors || (s + 1) * SECTOR > img.b.length) throw malformed(`no volume descriptor set terminator by sector ${String(s)}`);
    const at = s * SECTOR;
    if (img.b.toString('latin1', at + 1, at + 6) !== 'CD001') throw malformed(`sector ${String(s)} is not a volume descriptor (no CD001)`);
    const type = img.b[at]!;
    if (type === 255) break;
    if (type === 1 && primary === undefined) primary = at;
    if (type === 2 && joliet === undefined && /^%\/[@CE]$/.test(img.b.toString('latin1', at + 88, at + 91))) joliet = at;
  }
  if (primary === undefined) throw malformed('no primary volume descriptor');
  if (img.b.readUInt16LE(primary + 128) !== SECTOR) throw malformed(`logical block size ${String(img.b.readUInt16LE(primary + 128))} is not 2048`);
  const sectors = img.b.readUInt32LE(primary + 80);
  if (sectors * SECTOR > img.b.length) throw malformed(`truncated: the volume is ${String(sectors)} sectors but the image holds ${String(Math.floor(img.b.length / SECTOR))}`);
  return joliet === undefined ? { primary } : { primary, joliet };
}

export function readIsoImage(bytes: Uint8Array, options: ReadOptions = {}): IsoImage {
  const img = new Image(bytes);
  const vd = descriptors(img);
  const volumeId = img.b.toString('latin1', vd.primary + 40, vd.primary + 72).replace(/[ \0]+$/, '');
  const primaryRoot = img.record(vd.primary + 156, 'root directory record');
  img.range(primaryRoot.extent * SECTOR, 34, 'root directory');
  const dot = img.record(primaryRoot.extent * SECTOR, 'root "." record');
  const rootSusp = readSusp(img, dot.suStart, dot.suEnd, 'root "." record');
  const rockRidge = rootSusp.signatures.has('SP') && (rootSusp.signatures.has('PX') || rootSusp.signatures.has('ER') || rootSusp.signatures.has('RR'));
  const wanted = options.names ?? 'best';
  const names: NameSpace = wanted !== 'best' ? wanted : rockRidge ? 'rockridge' : vd.joliet !== undefined ? 'joliet' : 'iso9660';
  if (names === 'rockridge' && !rockRidge) throw malformed('Rock Ridge names were asked for but the image has no Rock Ridge');
  if (names === 'joliet' && vd.joliet === undefined) throw malformed('Joliet names were asked for but the image has no Joliet descriptor');
  const root = names === 'joliet' ? img.record(vd.joliet! + 156, 'Joliet root directory record') : primaryRoot;

  const files = new Map<string, Uint8Array>();
  const directories: string[] = [];
  const visited = new Set<number>();
  const queue: { extent: number; size: number; path: string; depth: number }[] = [{ extent: root.extent, size: root.size, path: '', depth: 0 }];
  let entries = 0;
  for (let q = 0; q < queue.length; q++) {
    const dir = queue[q]!;
    const where = `directory "/${dir.path}" at sector ${String(dir.extent)}`;
    if (visited.has(dir.extent)) throw malformed(`${where} is reached twice (a directory loop)`);
    visited.add(dir.extent);
    if (visited.size > LIMITS.directories) throw malformed(`more than ${String(LIMITS.directories)} directories`);
    img.range(dir.extent * SECTOR, dir.size, where);
    const seen = new Set<string>();
    const end = dir.extent * SECTOR + dir.size;
    for (let at = dir.extent * SECTOR, index = 0; at < end; index++) {
      if (img.b[at] === 0) {
        // Records do not cross sectors; the rest of this sector is padding.
        at = (Math.floor(at / SECTOR) + 1) * SECTOR;
        continue;
      }
      const r = img.record(at, `${where}, record at byte ${String(at - dir.extent * SECTOR)}`);
      if ((at % SECTOR) + img.b[at]! > SECTOR) throw malformed(`${where}: a record crosses a sector boundary`);
      at += img.b[at]!;
      if (r.id.length === 1 && (r.id[0] === 0 || r.id[0] === 1)) continue;
      if (++entries > LIMITS.entries) throw malformed(`more than ${String(LIMITS.entries)} entries`);
      let name: string;
      let extent = r.extent;
      let isDir = r.dir;
      if (names === 'rockridge') {
        const susp = readSusp(img, r.suStart, r.suEnd, `${where}, entry ${String(index)}`);
        if (susp.relocated) continue;
        if (susp.childLink !== undefined) {
          extent = susp.childLink;
          isDir = true;
        }
        name = susp.name ?? isoName(r.id);
      } else {
        name = names === 'joliet' ? jolietName(r.id) : isoName(r.id);
      }
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw malformed(`${where}: unusable name ${JSON.stringify(name)}`);
      if (seen.has(name)) throw malformed(`${where}: "${name}" appears twice`);
      seen.add(name);
      const path = dir.path === '' ? name : `${dir.path}/${name}`;
      if (isDir) {
        if (dir.depth + 1 > LIMITS.depth) throw malformed(`"${path}" is deeper than ${String(LIMITS.depth)} levels`);
        let size = r.size;
        if (extent !== r.extent) {
          img.range(extent * SECTOR, 34, `relocated directory "${path}"`);
          size = img.record(extent * SECTOR, `relocated directory "${path}"`).size;
        }
        directories.push(path);
        queue.push({ extent, size, path, depth: dir.depth + 1 });
      } else {
        if (r.size > 0) img.range(r.extent * SECTOR, r.size, `file "${path}"`);
        files.set(path, r.size === 0 ? new Uint8Array(0) : img.b.subarray(r.extent * SECTOR, r.extent * SECTOR + r.size));
      }
    }
  }
  return { volumeId, extensions: { rockRidge, joliet: vd.joliet !== undefined }, names, files, directories };
}

/**
 * An image file's bytes, with the checks every reader of a named file needs: a regular
 * file, not larger than any drive, read errors as IO_ERROR naming the path.
 */
export async function readImageFile(path: string): Promise<Buffer> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw malformed(`${path} is not a regular file`);
    if (info.size > MAX_IMAGE_BYTES) throw malformed(`${path} is ${String(info.size)} bytes, larger than any drive this agent reads`);
    return await readFile(path);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('IO_ERROR', `cannot read ${path}: ${String((err as NodeJS.ErrnoException).code ?? err)}`, { cause: err });
  }
}

/** Reads and parses an image file; a file too large to be a drive is refused unread. */
export async function readIsoFile(path: string, options: ReadOptions = {}): Promise<IsoImage> {
  return readIsoImage(await readImageFile(path), options);
}

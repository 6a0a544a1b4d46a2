/**
 * The builtin writer: an ECMA-119 image with Rock Ridge and Joliet, laid out in one pass
 * and written into one buffer (or streamed: metadata first, then file data in order).
 *
 *   sectors 0-15   system area (zeros)
 *   16             primary volume descriptor      17  Joliet supplementary descriptor
 *   18             descriptor set terminator
 *   19...          path tables: primary L, M; Joliet L, M
 *   then           Rock Ridge continuation areas, primary directories, Joliet directories
 *   then           file data, in the primary tree's order; empty files take no sector
 *
 * The same tree and timestamp always give the same bytes.
 */
import { buildTree, validateVolumeId, type DirNode, type FileNode, type IsoTree } from './tree.js';
import { compareIsoIds, isoNamesFor, jolietName, rockRidgeName } from './names.js';
import { both16, both32, ce, er, nm, px, rr, shortDate, sp, SUSP_CE_LENGTH, tf, totalLength, type Entry } from './susp.js';

export const SECTOR = 2048;
const FIRST_FREE_SECTOR = 19;
const FILE_MODE = 0o100444;
const DIR_MODE = 0o040555;

export interface IsoWriteOptions {
  /** Volume label; default `config-2`. */
  readonly volumeId?: string;
  /** Every timestamp on the image; default now. Fix it for reproducible images. */
  readonly timestamp?: Date;
}

interface Rec {
  /** Identifier bytes: 0x00 for ".", 0x01 for "..". */
  readonly id: Uint8Array;
  readonly target: DirLayout | FileNode;
  readonly inline: Entry[];
  readonly continuation?: { readonly entries: Entry[]; readonly length: number; sector: number; offset: number };
  readonly length: number;
}

interface DirLayout {
  readonly node: DirNode;
  readonly parent: DirLayout | null;
  /** Primary and Joliet identifiers of this directory in its parent. */
  readonly isoId: Uint8Array;
  readonly jolietId: Uint8Array;
  primaryRecords: Rec[];
  jolietRecords: Rec[];
  primarySize: number;
  jolietSize: number;
  primaryLba: number;
  jolietLba: number;
  primaryNumber: number;
  jolietNumber: number;
}

interface Layout {
  readonly dirs: DirLayout[];
  readonly files: { node: FileNode; lba: number }[];
  readonly fileLba: Map<FileNode, number>;
  readonly continuationSectors: number;
  readonly ceLba: number;
  readonly pathTables: { primary: Buffer[]; joliet: Buffer[]; primaryLba: number; jolietLba: number; primarySize: number; jolietSize: number };
  readonly dataLba: number;
  readonly totalSectors: number;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const DOT = Uint8Array.of(0);
const DOTDOT = Uint8Array.of(1);

function sectors(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

function recordBase(id: Uint8Array): number {
  return 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
}

/** Splits system-use entries between the record (255 bytes at most) and a continuation area. */
function makeRecord(id: Uint8Array, target: DirLayout | FileNode, entries: Entry[], forceContinuation: readonly Entry[] = []): Rec {
  const base = recordBase(id);
  const budget = 254 - base;
  if (forceContinuation.length === 0 && totalLength(entries) <= budget) {
    const length = base + totalLength(entries);
    return { id, target, inline: entries, length: length + (length % 2) };
  }
  const inline: Entry[] = [];
  let used = 0;
  let i = 0;
  for (; i < entries.length && used + entries[i]!.length <= budget - SUSP_CE_LENGTH; i++) used += entries[i]!.length;
  inline.push(...entries.slice(0, i));
  const rest = [...entries.slice(i), ...forceContinuation];
  const length = base + used + SUSP_CE_LENGTH;
  return { id, target, inline, continuation: { entries: rest, length: totalLength(rest), sector: 0, offset: 0 }, length: length + (length % 2) };
}

/**
 * Entries that are the same for many records, made once per image: entries are only
 * ever copied into the image, never changed, so records can share them.
 */
interface Shared {
  readonly tf: Entry;
  readonly rrWithName: Entry;
  readonly rrNoName: Entry;
  readonly filePx: Entry;
}

function dirEntries(dir: DirLayout, shared: Shared, withName: Uint8Array | null): Entry[] {
  let subdirs = 0;
  for (const c of dir.node.children.values()) if (c.kind === 'dir') subdirs++;
  return [withName === null ? shared.rrNoName : shared.rrWithName, px(DIR_MODE, 2 + subdirs), shared.tf, ...(withName === null ? [] : nm(withName))];
}

/** Packs records into sectors (a record never crosses a sector boundary); returns the size in bytes. */
function directorySize(records: readonly Rec[]): number {
  let offset = 0;
  for (const r of records) {
    if ((offset % SECTOR) + r.length > SECTOR) offset = Math.ceil(offset / SECTOR) * SECTOR;
    offset += r.length;
  }
  return Math.max(1, sectors(offset)) * SECTOR;
}

/** Breadth-first, each level ordered by parent number then identifier: the path table order. */
function numberDirs(root: DirLayout, childrenOf: (d: DirLayout) => DirLayout[], set: (d: DirLayout, n: number) => void): DirLayout[] {
  const order = [root];
  for (let i = 0; i < order.length; i++) {
    set(order[i]!, i + 1);
    order.push(...childrenOf(order[i]!));
  }
  return order;
}

function layout(root: DirNode, date: Date): Layout {
  const byNode = new Map<DirNode, DirLayout>();
  const isoIds = new Map<DirNode, Map<DirNode | FileNode, string>>();
  const make = (node: DirNode, parent: DirLayout | null, isoId: Uint8Array): DirLayout => {
    const d: DirLayout = { node, parent, isoId, jolietId: parent === null ? DOT : jolietName(node.name), primaryRecords: [], jolietRecords: [], primarySize: 0, jolietSize: 0, primaryLba: 0, jolietLba: 0, primaryNumber: 0, jolietNumber: 0 };
    byNode.set(node, d);
    const names = isoNamesFor(node);
    isoIds.set(node, names);
    for (const child of node.children.values()) if (child.kind === 'dir') make(child, d, latin1(names.get(child)!));
    return d;
  };
  const rootLayout = make(root, null, DOT);
  const dirs = [...byNode.values()];
  const primaryChildren = (d: DirLayout) => {
    const names = isoIds.get(d.node)!;
    return [...d.node.children.values()].sort((a, b) => compareIsoIds(names.get(a)!, names.get(b)!));
  };
  const jolietIds = new Map<DirNode | FileNode, Buffer>();
  const jolietId = (n: DirNode | FileNode) => {
    let id = jolietIds.get(n);
    if (id === undefined) jolietIds.set(n, (id = jolietName(n.name)));
    return id;
  };
  const jolietChildren = (d: DirLayout) => [...d.node.children.values()].sort((a, b) => Buffer.compare(jolietId(a), jolietId(b)));
  const primaryOrder = numberDirs(rootLayout, (d) => primaryChildren(d).flatMap((c) => (c.kind === 'dir' ? [byNode.get(c)!] : [])), (d, n) => (d.primaryNumber = n));
  const jolietOrder = numberDirs(rootLayout, (d) => jolietChildren(d).flatMap((c) => (c.kind === 'dir' ? [byNode.get(c)!] : [])), (d, n) => (d.jolietNumber = n));

  // Records (sizes only need identifier and entry lengths; positions are filled in later).
  const shared: Shared = { tf: tf(date), rrWithName: rr(true), rrNoName: rr(false), filePx: px(FILE_MODE, 1) };
  const files: FileNode[] = [];
  for (const d of primaryOrder) {
    const names = isoIds.get(d.node)!;
    const parent = d.parent ?? d;
    d.primaryRecords = [
      d.parent === null ? makeRecord(DOT, d, [sp(), ...dirEntries(d, shared, null)], [er()]) : makeRecord(DOT, d, dirEntries(d, shared, null)),
      makeRecord(DOTDOT, parent, dirEntries(parent, shared, null)),
    ];
    for (const child of primaryChildren(d)) {
      const id = latin1(names.get(child)!);
      if (child.kind === 'dir') d.primaryRecords.push(makeRecord(id, byNode.get(child)!, dirEntries(byNode.get(child)!, shared, rockRidgeName(child.name))));
      else {
        files.push(child);
        d.primaryRecords.push(makeRecord(id, child, [shared.rrWithName, shared.filePx, shared.tf, ...nm(rockRidgeName(child.name))]));
      }
    }
    d.primarySize = directorySize(d.primaryRecords);
    d.jolietRecords = [makeRecord(DOT, d, []), makeRecord(DOTDOT, parent, [])];
    for (const child of jolietChildren(d)) d.jolietRecords.push(makeRecord(jolietId(child), child.kind === 'dir' ? byNode.get(child)! : child, []));
    d.jolietSize = directorySize(d.jolietRecords);
  }

  // Continuation areas, packed into whole sectors; an area never crosses a sector.
  let ceSector = 0;
  let ceOffset = 0;
  for (const d of primaryOrder) {
    for (const r of d.primaryRecords) {
      if (r.continuation === undefined) continue;
      if (ceOffset + r.continuation.length > SECTOR) {
        ceSector++;
        ceOffset = 0;
      }
      r.continuation.sector = ceSector;
      r.continuation.offset = ceOffset;
      ceOffset += r.continuation.length;
    }
  }
  const continuationSectors = ceOffset === 0 && ceSector === 0 ? 0 : ceSector + 1;

  const primaryTable = pathTable(primaryOrder, (d) => d.isoId);
  const jolietTable = pathTable(jolietOrder, (d) => d.jolietId);
  let lba = FIRST_FREE_SECTOR;
  const primaryLba = lba;
  lba += 2 * sectors(primaryTable.size);
  const jolietLba = lba;
  lba += 2 * sectors(jolietTable.size);
  const ceLba = lba;
  lba += continuationSectors;
  for (const d of primaryOrder) {
    d.primaryLba = lba;
    lba += d.primarySize / SECTOR;
  }
  for (const d of jolietOrder) {
    d.jolietLba = lba;
    lba += d.jolietSize / SECTOR;
  }
  const dataLba = lba;
  const placed: { node: FileNode; lba: number }[] = [];
  const fileLba = new Map<FileNode, number>();
  for (const f of files) {
    // Empty files point at sector 0 with length 0, as genisoimage does: no data to read.
    const at = f.content.length === 0 ? 0 : lba;
    fileLba.set(f, at);
    if (f.content.length > 0) placed.push({ node: f, lba: at });
    lba += sectors(f.content.length);
  }
  return {
    dirs,
    files: placed,
    fileLba,
    continuationSectors,
    ceLba,
    pathTables: { primary: primaryTable.records, joliet: jolietTable.records, primaryLba, jolietLba, primarySize: primaryTable.size, jolietSize: jolietTable.size },
    dataLba,
    totalSectors: lba,
  };
}

function pathTable(order: readonly DirLayout[], id: (d: DirLayout) => Uint8Array) {
  const records = order.map((d) => {
    const name = id(d);
    const b = Buffer.alloc(8 + name.length + (name.length % 2));
    b[0] = name.length;
    b.set(name, 8);
    return b;
  });
  return { records, size: records.reduce((n, r) => n + r.length, 0) };
}

function writePathTables(out: Buffer, order: readonly DirLayout[], records: readonly Buffer[], lba: number, size: number, extent: (d: DirLayout) => number, num: (d: DirLayout) => number): void {
  let l = lba * SECTOR;
  let m = (lba + sectors(size)) * SECTOR;
  order.forEach((d, i) => {
    const r = records[i]!;
    const parent = d.parent === null ? 1 : num(d.parent);
    out.set(r, l);
    out.writeUInt32LE(extent(d), l + 2);
    out.writeUInt16LE(parent, l + 6);
    out.set(r, m);
    out.writeUInt32BE(extent(d), m + 2);
    out.writeUInt16BE(parent, m + 6);
    l += r.length;
    m += r.length;
  });
}

function writeRecord(out: Buffer, at: number, r: Rec, lba: number, size: number, isDir: boolean, date: Date, ceLba: number): void {
  out[at] = r.length;
  both32(out, at + 2, lba);
  both32(out, at + 10, size);
  shortDate(out, at + 18, date);
  out[at + 25] = isDir ? 0x02 : 0;
  both16(out, at + 28, 1);
  out[at + 32] = r.id.length;
  out.set(r.id, at + 33);
  let p = at + recordBase(r.id);
  for (const e of r.inline) {
    out.set(e, p);
    p += e.length;
  }
  if (r.continuation !== undefined) {
    const c = r.continuation;
    out.set(ce(ceLba + c.sector, c.offset, c.length), p);
    let q = (ceLba + c.sector) * SECTOR + c.offset;
    for (const e of c.entries) {
      out.set(e, q);
      q += e.length;
    }
  }
}

function writeDirectory(out: Buffer, records: readonly Rec[], lba: number, primary: boolean, l: Layout, date: Date): void {
  let offset = 0;
  for (const r of records) {
    if ((offset % SECTOR) + r.length > SECTOR) offset = Math.ceil(offset / SECTOR) * SECTOR;
    const t = r.target;
    if ('node' in t) writeRecord(out, lba * SECTOR + offset, r, primary ? t.primaryLba : t.jolietLba, primary ? t.primarySize : t.jolietSize, true, date, l.ceLba);
    else writeRecord(out, lba * SECTOR + offset, r, l.fileLba.get(t)!, t.content.length, false, date, l.ceLba);
    offset += r.length;
  }
}

function longDate(date: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const b = latin1(`${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}00\0`);
  return b;
}

function writeDescriptor(out: Buffer, joliet: boolean, label: string, l: Layout, root: DirLayout, date: Date): void {
  const at = (joliet ? 17 : 16) * SECTOR;
  const text = (s: string, offset: number, width: number) => {
    if (joliet) {
      for (let i = 0; i + 1 < width; i += 2) out.writeUInt16BE(0x0020, at + offset + i);
      jolietName(s.slice(0, width / 2)).copy(out, at + offset);
    } else {
      out.fill(0x20, at + offset, at + offset + width);
      if (s !== '') out.write(s.slice(0, width), at + offset, 'latin1');
    }
  };
  out[at] = joliet ? 2 : 1;
  out.write('CD001', at + 1, 'latin1');
  out[at + 6] = 1;
  text('LINUX', 8, 32);
  text(label, 40, 32);
  both32(out, at + 80, l.totalSectors);
  if (joliet) out.write('%/E', at + 88, 'latin1'); // UCS-2 level 3
  both16(out, at + 120, 1);
  both16(out, at + 124, 1);
  both16(out, at + 128, SECTOR);
  const pt = joliet ? { lba: l.pathTables.jolietLba, size: l.pathTables.jolietSize } : { lba: l.pathTables.primaryLba, size: l.pathTables.primarySize };
  both32(out, at + 132, pt.size);
  out.writeUInt32LE(pt.lba, at + 140);
  out.writeUInt32BE(pt.lba + sectors(pt.size), at + 148);
  const rootRecord: Rec = { id: DOT, target: root, inline: [], length: 34 };
  writeRecord(out, at + 156, rootRecord, joliet ? root.jolietLba : root.primaryLba, joliet ? root.jolietSize : root.primarySize, true, date, 0);
  for (const [offset, width] of [[190, 128], [318, 128], [446, 128], [702, 37], [739, 37], [776, 37]] as const) text('', offset, width);
  text('CONFIGDRIVE-AGENT', 574, 128);
  longDate(date).copy(out, at + 813);
  longDate(date).copy(out, at + 830);
  out.write('0000000000000000', at + 847, 'latin1');
  out.write('0000000000000000', at + 864, 'latin1');
  out[at + 881] = 1;
}

function writeMetadata(out: Buffer, label: string, l: Layout, date: Date): void {
  const rootLayout = l.dirs[0]!;
  writeDescriptor(out, false, label, l, rootLayout, date);
  writeDescriptor(out, true, label, l, rootLayout, date);
  out[18 * SECTOR] = 255;
  out.write('CD001', 18 * SECTOR + 1, 'latin1');
  out[18 * SECTOR + 6] = 1;
  const primaryOrder = [...l.dirs].sort((a, b) => a.primaryNumber - b.primaryNumber);
  const jolietOrder = [...l.dirs].sort((a, b) => a.jolietNumber - b.jolietNumber);
  writePathTables(out, primaryOrder, l.pathTables.primary, l.pathTables.primaryLba, l.pathTables.primarySize, (d) => d.primaryLba, (d) => d.primaryNumber);
  writePathTables(out, jolietOrder, l.pathTables.joliet, l.pathTables.jolietLba, l.pathTables.jolietSize, (d) => d.jolietLba, (d) => d.jolietNumber);
  for (const d of l.dirs) {
    writeDirectory(out, d.primaryRecords, d.primaryLba, true, l, date);
    writeDirectory(out, d.jolietRecords, d.jolietLba, false, l, date);
  }
}

function prepare(tree: IsoTree, options: IsoWriteOptions): { label: string; date: Date; l: Layout } {
  const label = options.volumeId ?? 'config-2';
  validateVolumeId(label);
  const date = new Date(Math.floor((options.timestamp ?? new Date()).getTime() / 1000) * 1000);
  return { label, date, l: layout(buildTree(tree), date) };
}

/**
 * Everything before the file data, and where each file's data goes: for writing an
 * image as a stream (metadata, then each file padded to its sector) without holding it.
 */
export function planImage(tree: IsoTree, options: IsoWriteOptions = {}): { head: Buffer; files: readonly { node: FileNode; lba: number }[]; totalSectors: number; dataLba: number } {
  const { label, date, l } = prepare(tree, options);
  const head = Buffer.alloc(l.dataLba * SECTOR);
  writeMetadata(head, label, l, date);
  return { head, files: l.files, totalSectors: l.totalSectors, dataLba: l.dataLba };
}

/** The whole image in memory, in one allocation. Throws INVALID_TREE / INVALID_LABEL for bad input. */
export function writeIsoImage(tree: IsoTree, options: IsoWriteOptions = {}): Uint8Array {
  const { label, date, l } = prepare(tree, options);
  // Zeroed by the allocator (calloc'd pages), which measured faster than filling ourselves.
  const out = Buffer.alloc(l.totalSectors * SECTOR);
  writeMetadata(out, label, l, date);
  for (const f of l.files) out.set(f.node.content, f.lba * SECTOR);
  return out;
}

/**
 * Streams an image into an open file: the metadata, then each file's bytes padded to its
 * sector, in order, without holding the whole image in memory. Returns the bytes written.
 */
export async function writeIsoImageToFile(tree: IsoTree, handle: { write(data: Uint8Array): Promise<unknown> }, options: IsoWriteOptions = {}): Promise<number> {
  const plan = planImage(tree, options);
  await handle.write(plan.head);
  let at = plan.head.length;
  for (const f of plan.files) {
    const start = f.lba * SECTOR;
    if (start > at) await handle.write(new Uint8Array(start - at));
    await handle.write(f.node.content);
    at = start + f.node.content.length;
  }
  const end = plan.totalSectors * SECTOR;
  if (end > at) await handle.write(new Uint8Array(end - at));
  return end;
}

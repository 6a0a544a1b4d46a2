/**
 * The three names each entry has on the image:
 *  - ISO9660 level 1: 8.3 upper-case d-characters plus `;1` for files, 8 for directories.
 *    Level 1 because every reader, down to firmware and old Windows, accepts it; the real
 *    names travel in Rock Ridge and Joliet. Collisions get a numeric tail, deterministic.
 *  - Rock Ridge: the name's UTF-8 bytes (NM entries, see susp.ts).
 *  - Joliet: the name in UTF-16 big-endian; characters outside the BMP become surrogate
 *    pairs, which Windows and Linux's Joliet code decode. No `;1` is appended.
 */
import type { DirNode, Node } from './tree.js';

const D_CHARACTER = /[A-Z0-9_]/;

function dChars(text: string, max: number): string {
  let out = '';
  for (const ch of text.toUpperCase()) {
    if (out.length === max) break;
    out += D_CHARACTER.test(ch) ? ch : '_';
  }
  return out;
}

function splitExtension(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot + 1)];
}

/** `base` shortened so that `base + tail` fits in 8 characters. */
function withTail(base: string, tail: string): string {
  return base.slice(0, 8 - tail.length) + tail;
}

export interface IsoNames {
  /** Child node -> its ISO9660 identifier (`META_DAT.JSO;1`, `OPENSTAC`). */
  readonly iso: Map<Node, string>;
}

/**
 * ISO9660 identifiers for the children of `dir`, unique within it. Children are named in
 * the order of their real names, so the same tree always gets the same identifiers.
 */
export function isoNamesFor(dir: DirNode): Map<Node, string> {
  const names = new Map<Node, string>();
  const taken = new Set<string>();
  // Map keys are already unique; code-unit order is deterministic, which is all this needs.
  const children = [...dir.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const child of children) {
    let base: string;
    let ext: string;
    if (child.kind === 'dir') {
      base = dChars(child.name, 8) || '_';
      ext = '';
    } else {
      const [b, e] = splitExtension(child.name);
      base = dChars(b, 8) || '_';
      ext = dChars(e, 3);
    }
    const make = (b: string) => (child.kind === 'dir' ? b : `${b}.${ext};1`);
    let id = make(base);
    for (let n = 1; taken.has(id); n++) id = make(withTail(base, String(n)));
    taken.add(id);
    names.set(child, id);
  }
  return names;
}


/** ECMA-119 9.3 orders records by identifier; plain byte order of the identifiers does it for level 1 names. */
export function compareIsoIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function jolietName(name: string): Buffer {
  const out = Buffer.alloc(name.length * 2);
  for (let i = 0; i < name.length; i++) out.writeUInt16BE(name.charCodeAt(i), i * 2);
  return out;
}

export function rockRidgeName(name: string): Uint8Array {
  return Buffer.from(name, 'utf8');
}

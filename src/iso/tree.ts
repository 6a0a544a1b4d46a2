/**
 * The input side of the writers: a flat map of relative paths to bytes, checked and
 * turned into a directory tree. Every name problem is collected and reported with its
 * path, so a caller fixes all of them at once.
 */
import { AgentError, invalid, type Problem } from '../errors.js';

export interface IsoTree {
  /** Relative '/'-separated paths, e.g. `openstack/latest/meta_data.json`; parents are implied. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Extra directories, e.g. empty ones. */
  readonly directories?: Iterable<string>;
}

/** Limits that keep an image and the work to build or read it bounded. */
export const ISO_LIMITS = {
  /** Rock Ridge NM can carry more, but Linux and most tools stop at 255 bytes. */
  maxNameBytes: 255,
  /** Joliet names are UCS-2, at most 64 units (Joliet specification, "long names" aside). */
  maxJolietUnits: 64,
  maxEntries: 65_536,
  /** A config drive is small; this bounds memory for one image. */
  maxTotalBytes: 1024 * 1024 * 1024,
  /** The path table stores a directory's parent number in 16 bits. */
  maxDirectories: 65_535,
  maxDepth: 64,
  /** ISO9660 data lengths are 32-bit; larger files need multi-extent records we do not write. */
  maxFileBytes: 0xffff_f800,
} as const;

export interface DirNode {
  readonly kind: 'dir';
  readonly name: string;
  readonly path: string;
  readonly children: Map<string, Node>;
}

export interface FileNode {
  readonly kind: 'file';
  readonly name: string;
  readonly path: string;
  readonly content: Uint8Array;
}

export type Node = DirNode | FileNode;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a single name cannot be used, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'has an empty name';
  if (name === '.' || name === '..') return `uses "${name}", which is not a name`;
  if (name.includes('\0')) return 'contains a NUL byte';
  if (LONE_SURROGATE.test(name)) return 'is not valid Unicode (lone surrogate)';
  if (Buffer.byteLength(name, 'utf8') > ISO_LIMITS.maxNameBytes) return `has a name over ${String(ISO_LIMITS.maxNameBytes)} bytes (Rock Ridge limit)`;
  if (name.length > ISO_LIMITS.maxJolietUnits) return `has a name over ${String(ISO_LIMITS.maxJolietUnits)} UTF-16 units (Joliet limit)`;
  // Joliet forbids these in names (Joliet specification, section 2.1).
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[*/:;?\\\u0000-\u001f]/.test(name)) return 'contains a character Joliet does not allow (* / : ; ? \\ or a control character)';
  return undefined;
}

function splitPath(path: string, problems: Problem[], field: string): string[] | undefined {
  if (path.startsWith('/')) {
    problems.push({ path: field, message: `"${path}" is absolute; paths on a drive are relative to its root` });
    return undefined;
  }
  const parts = path.split('/');
  if (parts.includes('..')) {
    problems.push({ path: field, message: `"${path}" contains ".."` });
    return undefined;
  }
  for (const part of parts) {
    const problem = nameProblem(part);
    if (problem !== undefined) {
      problems.push({ path: field, message: `"${path}" ${problem}` });
      return undefined;
    }
  }
  if (parts.length > ISO_LIMITS.maxDepth) {
    problems.push({ path: field, message: `"${path}" is ${String(parts.length)} levels deep, over the ${String(ISO_LIMITS.maxDepth)}-level limit` });
    return undefined;
  }
  return parts;
}

function newDir(name: string, path: string): DirNode {
  return { kind: 'dir', name, path, children: new Map() };
}

/** Walks to (creating) the directory `parts`; reports a file standing where a directory must be. */
function ensureDir(root: DirNode, parts: readonly string[], problems: Problem[], field: string): DirNode | undefined {
  let dir = root;
  for (const part of parts) {
    const existing = dir.children.get(part);
    if (existing === undefined) {
      const created = newDir(part, dir.path === '' ? part : `${dir.path}/${part}`);
      dir.children.set(part, created);
      dir = created;
    } else if (existing.kind === 'dir') {
      dir = existing;
    } else {
      problems.push({ path: field, message: `"${existing.path}" is a file and a directory at once` });
      return undefined;
    }
  }
  return dir;
}

/** The checked tree, or INVALID_TREE listing every problem. */
export function buildTree(tree: IsoTree): DirNode {
  const problems: Problem[] = [];
  const root = newDir('', '');
  let entries = 0;
  let total = 0;
  for (const dir of tree.directories ?? []) {
    const field = `directories[${JSON.stringify(dir)}]`;
    const parts = splitPath(dir, problems, field);
    if (parts !== undefined) ensureDir(root, parts, problems, field);
  }
  for (const [path, content] of tree.files) {
    const field = `files[${JSON.stringify(path)}]`;
    const parts = splitPath(path, problems, field);
    if (parts === undefined) continue;
    if (content.length > ISO_LIMITS.maxFileBytes) {
      problems.push({ path: field, message: `is ${String(content.length)} bytes, over the ${String(ISO_LIMITS.maxFileBytes)}-byte file limit` });
      continue;
    }
    total += content.length;
    const name = parts[parts.length - 1]!;
    const dir = ensureDir(root, parts.slice(0, -1), problems, field);
    if (dir === undefined) continue;
    if (dir.children.has(name)) {
      problems.push({ path: field, message: `"${path}" is given twice, or is also a directory` });
      continue;
    }
    dir.children.set(name, { kind: 'file', name, path, content });
  }
  let directories = 0;
  const count = (dir: DirNode): void => {
    directories++;
    for (const child of dir.children.values()) {
      entries++;
      if (child.kind === 'dir') count(child);
    }
  };
  count(root);
  if (entries > ISO_LIMITS.maxEntries) problems.push({ path: 'files', message: `${String(entries)} entries, over the ${String(ISO_LIMITS.maxEntries)}-entry limit` });
  if (directories > ISO_LIMITS.maxDirectories) problems.push({ path: 'directories', message: `${String(directories)} directories, over the ${String(ISO_LIMITS.maxDirectories)} limit` });
  if (total > ISO_LIMITS.maxTotalBytes) problems.push({ path: 'files', message: `${String(total)} bytes in all, over the ${String(ISO_LIMITS.maxTotalBytes)}-byte limit` });
  if (problems.length > 0) throw invalid('INVALID_TREE', 'The file tree cannot be put on a drive', problems);
  return root;
}

/**
 * The volume label: 1..32 printable ASCII bytes. ECMA-119 asks for d-characters
 * (A-Z 0-9 _), but the label every guest looks for is `config-2`, which genisoimage
 * and xorrisofs write as is and blkid and cloud-init read back exactly, so printable
 * ASCII is accepted and written unchanged.
 */
export function validateVolumeId(label: string): void {
  if (label.length === 0 || label.length > 32 || !/^[\x20-\x7e]+$/.test(label) || label !== label.trimEnd()) {
    throw new AgentError(
      'INVALID_LABEL',
      `volume label ${JSON.stringify(label)} is invalid: it must be 1 to 32 printable ASCII characters without trailing spaces`,
      { problems: [{ path: 'label', message: 'must be 1 to 32 printable ASCII characters' }] },
    );
  }
}

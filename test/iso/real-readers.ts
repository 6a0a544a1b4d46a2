/**
 * Independent readers of our images, each reduced to the same shape so the tests can
 * compare them: {files: path -> sha256, dirs: sorted paths}. isoinfo (genisoimage
 * package), xorriso's osirrox, pycdlib (python3-pycdlib) and blkid; none shares code
 * with src/iso.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { DEBIAN_PYTHON, requireTool, run } from '../helpers/tools.js';

export interface Listing {
  readonly files: Record<string, string>;
  readonly dirs: string[];
}

export interface Modes {
  readonly [path: string]: { mode: number; mtime: number };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What a reader should report for `files` (+ `extraDirs`): every parent directory included. */
export function expectedListing(files: ReadonlyMap<string, Uint8Array>, extraDirs: Iterable<string> = []): Listing {
  const out: Record<string, string> = {};
  const dirs = new Set<string>();
  const addParents = (path: string) => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  };
  for (const [path, bytes] of files) {
    out[path] = sha256(bytes);
    addParents(path);
  }
  for (const d of extraDirs) {
    dirs.add(d);
    addParents(d);
  }
  return { files: out, dirs: [...dirs].sort() };
}

const LINE = /^([d-])\S+\s+\d+\s+\d+\s+\d+\s+(\d+) .{11} \[\s*(\d+) \d\d\] {2}(.*) $/;

/**
 * isoinfo in Rock Ridge (-R) or Joliet (-J) mode: `-l` for the tree, `-x` per file.
 * isoinfo prints Joliet names in a single-byte charset: characters outside Latin-1 come
 * out as '_' (one per UTF-16 unit), so `jolietView` maps expected names the same way.
 */
export async function readWithIsoinfo(image: string, mode: '-R' | '-J'): Promise<Listing> {
  const isoinfo = requireTool('/usr/bin/isoinfo');
  const charset = mode === '-J' ? ['-j', 'iso8859-1'] : [];
  const listing = await execa(isoinfo, [mode, ...charset, '-l', '-i', image], { encoding: 'buffer' });
  const text = Buffer.from(listing.stdout).toString(mode === '-J' ? 'latin1' : 'utf8');
  const files: Record<string, string> = {};
  const dirs: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const header = /^Directory listing of \/(.*)$/.exec(line);
    if (header !== null) {
      current = header[1]!.replace(/\/$/, '');
      continue;
    }
    const m = LINE.exec(line);
    if (m === null) continue;
    const name = m[4]!;
    if (name === '.' || name === '..') continue;
    const path = current === '' ? name : `${current}/${name}`;
    if (m[1] === 'd') dirs.push(path);
    else files[path] = `size:${m[2]!}`;
  }
  for (const path of Object.keys(files)) {
    // Node passes arguments as UTF-8, isoinfo -J matches names in its single-byte
    // charset: only ASCII paths can be named to it, the rest are checked by size.
    if (mode === '-J' && !/^[\x20-\x7e]*$/.test(path)) continue;
    const out = await execa(isoinfo, [mode, ...charset, '-x', `/${path}`, '-i', image], { encoding: 'buffer', stripFinalNewline: false });
    files[path] = sha256(Buffer.from(out.stdout));
  }
  return { files, dirs: dirs.sort() };
}

/** What isoinfo -J shows for `files`: names in Latin-1 with '_' for the rest, non-ASCII paths by size. */
export function jolietView(files: ReadonlyMap<string, Uint8Array>, extraDirs: Iterable<string> = []): Listing {
  const expected = expectedListing(files, extraDirs);
  const map = (p: string) => p.replace(/[^\x20-\xff]/g, '_');
  const out: Record<string, string> = {};
  for (const [path, bytes] of files) out[map(path)] = /^[\x20-\x7e]*$/.test(map(path)) ? sha256(bytes) : `size:${String(bytes.length)}`;
  return { files: out, dirs: expected.dirs.map(map).sort() };
}

function walk(root: string, rel: string, out: { files: Record<string, string>; dirs: string[]; modes: Record<string, { mode: number; mtime: number }> }): void {
  for (const name of readdirSync(join(root, rel))) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const st = statSync(join(root, path));
    out.modes[path] = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) {
      out.dirs.push(path);
      walk(root, path, out);
    } else out.files[path] = sha256(readFileSync(join(root, path)));
  }
}

/** `osirrox -extract`: a full extraction through Rock Ridge, with modes and times. */
export async function readWithOsirrox(image: string): Promise<Listing & { modes: Modes }> {
  const dir = mkdtempSync(join(tmpdir(), 'osirrox-'));
  try {
    await run('/usr/bin/osirrox', ['-indev', image, '-extract', '/', join(dir, 'x')], { stdin: 'ignore' });
    const out = { files: {} as Record<string, string>, dirs: [] as string[], modes: {} as Record<string, { mode: number; mtime: number }> };
    walk(join(dir, 'x'), '', out);
    out.dirs.sort();
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PYCDLIB_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/iso/pycdlib_dump.py');

export interface PycdlibView {
  readonly rr: Listing | null;
  readonly joliet: Listing | null;
  readonly iso: Listing;
}

export async function readWithPycdlib(image: string): Promise<PycdlibView> {
  const view = JSON.parse(await run(DEBIAN_PYTHON, [PYCDLIB_SCRIPT, image])) as PycdlibView;
  for (const l of [view.rr, view.joliet, view.iso]) l?.dirs.sort();
  return view;
}

/** `blkid -p` (low-level probe, no cache): {LABEL, TYPE, ...}. */
export async function probeWithBlkid(image: string): Promise<Record<string, string>> {
  const out = await run('/usr/sbin/blkid', ['-p', '-o', 'export', image]);
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

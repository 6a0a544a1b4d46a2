/**
 * Images from the builtin writer, read by every independent reader we have: isoinfo -R
 * and -J, osirrox, pycdlib (Rock Ridge, Joliet and ISO9660 names), blkid, and our reader.
 * Fixed trees for the shapes that matter, then random trees from fast-check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { readIsoImage, writeIsoImage, type IsoTree } from '../../src/iso/index.js';
import {
  expectedListing,
  jolietView,
  probeWithBlkid,
  readWithIsoinfo,
  readWithOsirrox,
  readWithPycdlib,
  sha256,
  type Listing,
} from './real-readers.js';

const enc = new TextEncoder();
const TIMESTAMP = new Date('2026-11-25T10:20:30Z');

function ours(bytes: Uint8Array, names: 'rockridge' | 'joliet'): Listing {
  const image = readIsoImage(bytes, { names });
  return { files: Object.fromEntries([...image.files].map(([p, b]) => [p, sha256(b)])), dirs: [...image.directories].sort() };
}

/** Every reader agrees with the input. */
async function assertAllReadersAgree(tree: IsoTree, dir: string): Promise<void> {
  const bytes = writeIsoImage(tree, { timestamp: TIMESTAMP });
  const image = join(dir, 'image.iso');
  writeFileSync(image, bytes);
  const expected = expectedListing(tree.files, tree.directories);
  assert.deepEqual(ours(bytes, 'rockridge'), expected, 'our reader, Rock Ridge');
  assert.deepEqual(ours(bytes, 'joliet'), expected, 'our reader, Joliet');
  assert.deepEqual(await readWithIsoinfo(image, '-R'), expected, 'isoinfo -R');
  assert.deepEqual(await readWithIsoinfo(image, '-J'), jolietView(tree.files, tree.directories), 'isoinfo -J');
  const osirrox = await readWithOsirrox(image);
  assert.deepEqual({ files: osirrox.files, dirs: osirrox.dirs }, expected, 'osirrox');
  const pycdlib = await readWithPycdlib(image);
  assert.deepEqual(pycdlib.rr, expected, 'pycdlib Rock Ridge');
  assert.deepEqual(pycdlib.joliet, expected, 'pycdlib Joliet');
  assert.equal(Object.keys(pycdlib.iso.files).length, tree.files.size, 'pycdlib ISO9660 names: one per file, no collision');
  const blkid = await probeWithBlkid(image);
  assert.equal(blkid['LABEL'], 'config-2');
  assert.equal(blkid['TYPE'], 'iso9660');
}

const FIXED: Record<string, IsoTree> = {
  'the config-drive layout': {
    files: new Map([
      ['openstack/latest/meta_data.json', enc.encode('{"uuid": "6f1c7e2a"}\n')],
      ['openstack/latest/user_data', enc.encode('#cloud-config\nhostname: x\n')],
      ['openstack/latest/network_data.json', enc.encode('{"links": []}\n')],
      ['openstack/content/0000', enc.encode('temp content')],
    ]),
  },
  'empty files and empty directories': {
    files: new Map([['empty', new Uint8Array(0)], ['a/also-empty.txt', new Uint8Array(0)]]),
    directories: ['nothing-here', 'a/b/c'],
  },
  'a 16-level deep tree (deeper than ECMA-119 level 8)': {
    files: new Map([[Array.from({ length: 15 }, (_, i) => `d${String(i)}`).join('/') + '/leaf.txt', enc.encode('deep')]]),
  },
  'long and non-ASCII names that mangle to the same 8.3 name': {
    files: new Map([
      ['meta_data.json', enc.encode('1')],
      ['meta_data.json.bak', enc.encode('2')],
      ['meta_datum.json', enc.encode('3')],
      ['Meta_Data.JSON', enc.encode('4')],
      ['x'.repeat(64), enc.encode('64 units: the Joliet limit')],
      ['ünïcödé 日本語 😀.txt', enc.encode('unicode')],
      ['.hidden', enc.encode('dot file')],
      ['no-extension', enc.encode('plain')],
    ]),
  },
  'many files across sectors, and data of every size around a sector': {
    files: new Map([
      ...Array.from({ length: 300 }, (_, i) => [`many/file-${String(i).padStart(3, '0')}.txt`, enc.encode(`file ${String(i)}`)] as const),
      ...[1, 2047, 2048, 2049, 4096, 100_000].map((n) => [`sizes/${String(n)}.bin`, Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff)] as const),
    ]),
  },
};

describe('iso round trip through independent readers', function () {
  this.timeout(300_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'iso-rt-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const [name, tree] of Object.entries(FIXED)) {
    it(`reads back ${name} identically everywhere`, () => assertAllReadersAgree(tree, dir));
  }

  it('writes read-only POSIX modes and the given timestamp, as osirrox restores them', async () => {
    const image = join(dir, 'modes.iso');
    writeFileSync(image, writeIsoImage({ files: new Map([['d/f.txt', enc.encode('x')]]) }, { timestamp: TIMESTAMP }));
    const { modes } = await readWithOsirrox(image);
    const epoch = TIMESTAMP.getTime() / 1000;
    assert.deepEqual(modes['d/f.txt'], { mode: 0o444, mtime: epoch });
    assert.deepEqual(modes['d'], { mode: 0o555, mtime: epoch });
  });

  it('reads back random trees identically everywhere (fast-check)', async () => {
    const segment = fc
      .string({ unit: fc.oneof(fc.constantFrom(...'abcxyzABC019._- '), fc.constantFrom('é', 'ß', 'Ж', '日', '😀', 'ü')), minLength: 1, maxLength: 20 })
      .filter((s) => s !== '.' && s !== '..' && s.trim() === s);
    const path = fc.array(segment, { minLength: 1, maxLength: 5 }).map((p) => p.join('/'));
    const content = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 5000 }));
    const treeArb = fc
      .tuple(fc.uniqueArray(fc.tuple(path, content), { selector: ([p]) => p, maxLength: 12 }), fc.array(path, { maxLength: 3 }))
      .filter(([files, dirs]) => {
        // A path cannot be a file and a directory's ancestor at once.
        const paths = files.map(([p]) => p);
        return !paths.some((p) => [...paths, ...dirs].some((q) => q.startsWith(`${p}/`))) && !dirs.some((d) => paths.includes(d));
      });
    await fc.assert(
      fc.asyncProperty(treeArb, async ([files, dirs]) => {
        await assertAllReadersAgree({ files: new Map(files), directories: dirs }, dir);
      }),
      { numRuns: 25 },
    );
  });
});

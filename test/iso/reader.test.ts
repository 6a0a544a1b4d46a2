/**
 * The reader against images it did not write (genisoimage, xorrisofs) and against
 * hostile ones: every malformed image is an ISO_MALFORMED error, quickly, never a hang
 * or a read past the end.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { AgentError } from '../../src/errors.js';
import { readIsoFile, readIsoImage, writeIsoImage, writeIsoImageToFile, writeWithGenisoimage } from '../../src/iso/index.js';
import { open } from 'node:fs/promises';
import { run } from '../helpers/tools.js';

const enc = new TextEncoder();
const SECTOR = 2048;
const DRIVE = new Map([
  ['openstack/latest/meta_data.json', enc.encode('{"uuid": "u"}\n')],
  ['openstack/latest/user_data', enc.encode('#cloud-config\n')],
  ['openstack/content/0000', enc.encode('x'.repeat(3000))],
]);

function isMalformed(err: unknown): boolean {
  return err instanceof AgentError && err.code === 'ISO_MALFORMED';
}

/** Hostile input must fail fast: a hang guard, not a performance claim. */
function assertRejectsQuickly(bytes: Uint8Array, pattern?: RegExp): void {
  const started = process.hrtime.bigint();
  assert.throws(() => readIsoImage(bytes), (err: unknown) => isMalformed(err) && (pattern === undefined || pattern.test((err as Error).message)));
  assert.ok(process.hrtime.bigint() - started < 2_000_000_000n, 'took over 2 s');
}

/** Finds the primary directory record with ISO9660 identifier `isoId`, for surgery. */
function recordOffset(image: Buffer, isoId: string): number {
  // Identifier length byte then identifier: path table entries have other bytes before the name.
  const at = image.indexOf(Buffer.concat([Buffer.of(isoId.length), Buffer.from(isoId, 'latin1')]), 19 * SECTOR);
  assert.ok(at > 0, `no record named ${isoId}`);
  return at - 32;
}

describe('iso reader', () => {
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'iso-reader-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads genisoimage and xorrisofs images: label, extensions and every file', async () => {
    const src = join(dir, 'src');
    for (const [path, bytes] of DRIVE) {
      mkdirSync(join(src, path, '..'), { recursive: true });
      writeFileSync(join(src, path), bytes);
    }
    const geniso = await writeWithGenisoimage({ files: DRIVE });
    const xorriso = join(dir, 'x.iso');
    await run('/usr/bin/xorrisofs', ['-quiet', '-R', '-J', '-V', 'config-2', '-o', xorriso, src]);
    for (const bytes of [geniso, readFileSync(xorriso)]) {
      for (const names of ['rockridge', 'joliet'] as const) {
        const image = readIsoImage(bytes, { names });
        assert.equal(image.volumeId, 'config-2');
        assert.deepEqual(image.extensions, { rockRidge: true, joliet: true });
        assert.deepEqual(new Map([...image.files].map(([p, b]) => [p, Buffer.from(b).toString()])), new Map([...DRIVE].map(([p, b]) => [p, Buffer.from(b).toString()])));
      }
    }
  });

  it('reads plain ISO9660 names when asked, and says which name space it used', () => {
    const image = readIsoImage(writeIsoImage({ files: DRIVE }), { names: 'iso9660' });
    assert.equal(image.names, 'iso9660');
    assert.ok(image.files.has('OPENSTAC/LATEST/META_DAT.JSO'));
  });

  it('streams to a file exactly the bytes it builds in memory', async () => {
    const t = new Date('2026-01-01T00:00:00Z');
    const path = join(dir, 'streamed.iso');
    const handle = await open(path, 'w');
    const written = await writeIsoImageToFile({ files: DRIVE, directories: ['empty'] }, { write: (b) => handle.write(b) }, { timestamp: t });
    await handle.close();
    const memory = writeIsoImage({ files: DRIVE, directories: ['empty'] }, { timestamp: t });
    assert.equal(written, memory.length);
    assert.equal(Buffer.compare(readFileSync(path), memory), 0);
  });

  it('gives the same bytes for the same tree and timestamp', () => {
    const t = new Date('2026-01-01T00:00:00Z');
    assert.deepEqual(writeIsoImage({ files: DRIVE }, { timestamp: t }), writeIsoImage({ files: new Map([...DRIVE].reverse()) }, { timestamp: t }));
  });

  it('rejects an image truncated at any sector boundary', () => {
    const image = writeIsoImage({ files: DRIVE });
    for (let end = 0; end < image.length; end += SECTOR) assertRejectsQuickly(image.subarray(0, end));
    assertRejectsQuickly(image.subarray(0, image.length - 1), /truncated/);
  });

  it('rejects random bytes and a missing descriptor', () => {
    assertRejectsQuickly(new Uint8Array(40 * SECTOR).map((_, i) => (i * 131) & 0xff), /not a volume descriptor/);
    assertRejectsQuickly(new Uint8Array(40 * SECTOR), /CD001/);
  });

  it('rejects a directory that contains its own ancestor (a loop)', () => {
    const image = Buffer.from(writeIsoImage({ files: new Map([['a/b/f', enc.encode('x')]]) }));
    const root = image.readUInt32LE(16 * SECTOR + 156 + 2);
    for (const names of ['rockridge', 'iso9660'] as const) {
      const bad = Buffer.from(image);
      // Point directory B's record at the root's extent.
      const b = recordOffset(bad, 'B');
      bad.writeUInt32LE(root, b + 2);
      bad.writeUInt32BE(root, b + 6);
      assert.throws(() => readIsoImage(bad, { names }), (e: unknown) => isMalformed(e) && /loop|twice/.test((e as Error).message));
    }
  });

  it('rejects record lengths of 0..33 and past the sector, and extents past the end', () => {
    const image = Buffer.from(writeIsoImage({ files: DRIVE }));
    const at = recordOffset(image, 'META_DAT.JSO;1');
    for (const length of [1, 20, 33]) {
      const bad = Buffer.from(image);
      bad[at] = length;
      assertRejectsQuickly(bad);
    }
    const past = Buffer.from(image);
    past.writeUInt32LE(0xffff_fff0, at + 2);
    assertRejectsQuickly(past, /past the end/);
    const huge = Buffer.from(image);
    huge.writeUInt32LE(0x7fff_ffff, at + 10);
    assertRejectsQuickly(huge, /past the end/);
  });

  it('rejects Rock Ridge continuation areas that loop', () => {
    const image = Buffer.from(writeIsoImage({ files: DRIVE }));
    // The root "." record carries a CE (its ER does not fit); point the CE at its own record.
    const rootExtent = image.readUInt32LE(16 * SECTOR + 156 + 2);
    const ce = image.indexOf(Buffer.from('CE', 'latin1'), rootExtent * SECTOR);
    assert.ok(ce > 0 && ce < (rootExtent + 1) * SECTOR);
    image.writeUInt32LE(rootExtent, ce + 4);
    image.writeUInt32LE(ce - rootExtent * SECTOR, ce + 12);
    image.writeUInt32LE(28, ce + 20);
    assertRejectsQuickly(image, /continuation/);
  });

  it('never throws anything but ISO_MALFORMED on mutated images (fast-check)', () => {
    const image = writeIsoImage({ files: DRIVE });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(image.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 40 }), (edits) => {
        const bad = Buffer.from(image);
        for (const [at, value] of edits) bad[at] = value;
        try {
          readIsoImage(bad);
        } catch (err) {
          if (!isMalformed(err)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a path that is not a regular file and reports unreadable files as IO_ERROR', async () => {
    await assert.rejects(readIsoFile(dir), isMalformed);
    await assert.rejects(readIsoFile(join(dir, 'missing.iso')), (e: unknown) => e instanceof AgentError && e.code === 'IO_ERROR');
  });
});

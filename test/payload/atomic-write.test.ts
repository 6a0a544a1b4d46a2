import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/payload/atomic-write.js';
import { AgentError } from '../../src/errors.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the bytes with the requested mode whatever the umask', async () => {
    const target = join(dir, 'a.iso');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(target, new Uint8Array([1, 2, 3]), 0o640);
    } finally {
      process.umask(old);
    }
    assert.deepEqual([...(await readFile(target))], [1, 2, 3]);
    assert.equal((await stat(target)).mode & 0o777, 0o640);
  });

  it('replaces an existing file whole and leaves no temp file behind', async () => {
    const target = join(dir, 'a.iso');
    await writeFileAtomic(target, Buffer.from('old'));
    await writeFileAtomic(target, Buffer.from('new contents'));
    assert.equal(await readFile(target, 'utf8'), 'new contents');
    assert.deepEqual(await readdir(dir), ['a.iso']);
  });

  it('fails with IO_ERROR naming the path and leaves nothing when the directory is missing', async () => {
    const target = join(dir, 'missing', 'a.iso');
    await assert.rejects(writeFileAtomic(target, Buffer.from('x')), (err: unknown) => {
      assert.ok(err instanceof AgentError);
      assert.equal(err.code, 'IO_ERROR');
      assert.match(err.message, /missing\/a\.iso.*ENOENT/);
      return true;
    });
  });

  it('cleans up its temp file when the rename fails', async () => {
    // A directory in the target's place makes rename() fail after the data was written.
    const target = join(dir, 'taken');
    await mkdir(target);
    await chmod(target, 0o755);
    await assert.rejects(writeFileAtomic(target, Buffer.from('x')), AgentError);
    assert.deepEqual(await readdir(dir), ['taken']);
  });
});

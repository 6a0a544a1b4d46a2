import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { writeCacheFileSync } from '../../src/payload/atomic-write.js';
import { MAX_BUILDS, PayloadStore, type DomainRecord } from '../../src/payload/store.js';

/** What the service does with a build: a thread writes it into buildsDir, the store notes it, what falls out is removed. */
async function putBuild(store: PayloadStore, bytes: Uint8Array, sha256: string): Promise<void> {
  const path = join(store.buildsDir, `${sha256}.iso`);
  writeCacheFileSync(path, bytes, 0o640);
  for (const old of await store.noteBuild(path)) unlinkSync(old);
}

const UUID = '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
const SHA = 'ab'.repeat(32);

describe('payload store', () => {
  let dir = '';
  let store: PayloadStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'store-'));
    store = new PayloadStore({ dir });
    await store.init();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('never deletes an image a running QEMU holds (a block node libvirt lost in a crash): it stays until QEMU lets go', async () => {
    const path = await store.putImage(UUID, new Uint8Array(4096), SHA);
    // A real QEMU with the image open as a block node and no device, as a cut-off media change leaves it.
    const qemu = execa('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-blockdev', `driver=file,filename=${path},node-name=lost,read-only=on`], { reject: false });
    try {
      const holds = () => readdirSync(`/proc/${String(qemu.pid)}/fd`).some((fd) => readlinkSync(`/proc/${String(qemu.pid)}/fd/${fd}`) === path);
      for (let i = 0; i < 200 && !holds(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(holds(), 'QEMU has the image open');
      assert.equal(await store.removeImageUnlessHeld(path), false);
      await store.removeImage(path);
      assert.ok(existsSync(path), 'the image QEMU holds is still there');
    } finally {
      qemu.kill('SIGKILL');
      await qemu;
    }
    assert.equal(await store.removeImageUnlessHeld(path), true);
    assert.equal(existsSync(path), false, 'removed once QEMU is gone');
  });

  it('names images by domain UUID and content hash, mode 0640', async () => {
    const path = await store.putImage(UUID, new Uint8Array([1, 2, 3]), SHA);
    assert.equal(path, join(dir, 'images', `${UUID}-${SHA.slice(0, 16)}.iso`));
    assert.equal(statSync(path).mode & 0o777, 0o640);
  });

  it('sets its layout at every start: state 0711, images 0710 and 0640 in the images group, records and builds 0700', async () => {
    const old = await store.putImage(UUID, new Uint8Array([1]), SHA);
    chmodSync(dir, 0o750);
    chmodSync(store.imagesDir, 0o755);
    chmodSync(old, 0o600);
    const grouped = new PayloadStore({ dir, imageGid: 65534 });
    await grouped.init();
    const modes = [dir, grouped.imagesDir, grouped.domainsDir, grouped.buildsDir].map((d) => statSync(d).mode & 0o777);
    assert.deepEqual(modes, [0o711, 0o710, 0o700, 0o700]);
    assert.equal(statSync(grouped.imagesDir).gid, 65534);
    assert.deepEqual([statSync(old).mode & 0o777, statSync(old).gid], [0o640, 65534], 'an image from before is regrouped');
  });

  it('checks with a probe image that QEMU could open its images, and leaves no probe behind', async () => {
    const grouped = new PayloadStore({ dir, imageGid: 65534 });
    await grouped.init();
    await grouped.assertReadableBy({ uid: 65534, gid: 65534, groups: [65534], userName: 'nobody' });
    await assert.rejects(grouped.assertReadableBy({ uid: 4242, gid: 4242, groups: [4242], userName: 'outsider' }), /cannot search .*images/);
    assert.deepEqual(readdirSync(grouped.imagesDir), []);
  });

  it('refuses a UUID that is not canonical, so it can never form a path outside the store', async () => {
    for (const bad of ['../../etc/passwd', `${UUID}/x`, UUID.toUpperCase(), '']) {
      await assert.rejects(store.putImage(bad, new Uint8Array(1), SHA), AgentError);
      await assert.rejects(store.readRecord(bad), AgentError);
    }
  });

  it('refuses to remove a file outside its images directory', async () => {
    await assert.rejects(store.removeImage('/etc/hostname'), /not in the payload store/);
    await assert.rejects(store.removeImage(join(dir, 'images', '..', 'domains', 'x')), /not in the payload store|ENOENT/);
  });

  it('writes records atomically (0600) and reads them back; a damaged record is an IO_ERROR naming it', async () => {
    const record: DomainRecord = { version: 1, uuid: UUID, name: 'vm' };
    await store.writeRecord(record);
    assert.deepEqual(await store.readRecord(UUID), record);
    assert.equal(statSync(join(dir, 'domains', `${UUID}.json`)).mode & 0o777, 0o600);
    assert.deepEqual(await store.listRecords(), [record]);
    writeFileSync(join(dir, 'domains', `${UUID}.json`), '{"version":1,');
    await assert.rejects(store.readRecord(UUID), (e: unknown) => e instanceof AgentError && e.code === 'IO_ERROR' && e.message.includes(`${UUID}.json`));
    assert.equal(await store.readRecord('00000000-0000-0000-0000-000000000000'), undefined);
  });

  it('sweeps temp files left by an interrupted write and lists only finished images', async () => {
    await store.putImage(UUID, new Uint8Array(4), SHA);
    writeFileSync(join(dir, 'images', '.configdrive-tmp-0123-x.iso'), 'partial');
    writeFileSync(join(dir, 'domains', '.configdrive-tmp-0123-y.json'), '{');
    assert.equal((await store.listImages()).length, 1);
    assert.equal((await store.removeTempFiles()).length, 2);
    assert.deepEqual(readdirSync(join(dir, 'images')), [`${UUID}-${SHA.slice(0, 16)}.iso`]);
    assert.deepEqual(readdirSync(join(dir, 'domains')), []);
  });

  it('keeps the MAX_BUILDS most recent builds, a rebuilt one counting as new', async () => {
    const sha = (i: number) => i.toString(16).padStart(64, '0');
    for (let i = 0; i < MAX_BUILDS; i++) await putBuild(store, new Uint8Array([i & 0xff]), sha(i));
    await putBuild(store, new Uint8Array([0]), sha(0)); // build 0 again: now the newest
    for (let i = MAX_BUILDS; i < MAX_BUILDS + 3; i++) await putBuild(store, new Uint8Array([i & 0xff]), sha(i));
    const kept = new Set(readdirSync(join(dir, 'builds')));
    assert.equal(kept.size, MAX_BUILDS);
    assert.ok(kept.has(`${sha(0)}.iso`), 'the rebuilt one stays');
    for (const gone of [1, 2, 3]) assert.ok(!kept.has(`${sha(gone)}.iso`), `build ${String(gone)} was the oldest and went`);
    assert.ok(kept.has(`${sha(4)}.iso`));
  });

  it('orders builds left by an earlier run by their age', async () => {
    const sha = (i: number) => `ee${i.toString(16).padStart(62, '0')}`;
    for (let i = 0; i < MAX_BUILDS; i++) {
      const path = join(dir, 'builds', `${sha(i)}.iso`);
      writeFileSync(path, 'x');
      // build i is i seconds old, so the highest i is the oldest
      utimesSync(path, new Date(Date.now() - i * 1000), new Date(Date.now() - i * 1000));
    }
    const restarted = new PayloadStore({ dir });
    await restarted.init();
    await putBuild(restarted, new Uint8Array([1]), 'ff'.repeat(32));
    const kept = new Set(readdirSync(join(dir, 'builds')));
    assert.equal(kept.size, MAX_BUILDS);
    assert.ok(!kept.has(`${sha(MAX_BUILDS - 1)}.iso`), 'the oldest went');
    assert.ok(kept.has(`${'ff'.repeat(32)}.iso`) && kept.has(`${sha(0)}.iso`));
  });
});

/**
 * A full disk at each write of Payload.attach (shut off and running), VM.start,
 * Payload.detach and Payload.build, on the real daemon, the embedded driver and real QEMU. The state
 * directory is a small tmpfs of its own; a filler file leaves exactly the space that
 * lets the writes before the chosen one succeed. tmpfs counts whole 4 KiB pages and
 * nothing for directory entries, so an image takes ceil(size / 4096) pages and a record
 * one, and each write of an atomic replace needs its temp file's pages before the
 * rename frees the old file's:
 *
 *   free < image pages        the image write fails
 *   free = image pages        the journal entry fails (the image was written)
 *   free = image pages + 1    the commit fails (the journal entry holds one page)
 *
 * After each failure: IO_ERROR naming ENOSPC, the record as it was, libvirt and QEMU
 * agreeing with it (test/helpers/three-views.ts), no new file in the store, the domain
 * in the state it was, and the daemon serving; with the space back, the same request
 * succeeds.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AgentError } from '../../src/errors.js';
import { prepareEmbedRoot } from '../../src/libvirt/embed.js';
import type { RpcClient } from '../../src/rpc/client.js';
import { connectWhenReady, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { domainXml } from '../helpers/libvirt.js';
import { disagreements, readViews, strayFiles, type LibvirtFiles } from '../helpers/three-views.js';

const PAGE = 4096;
const DOMAINS = ['enospc-attach', 'enospc-start', 'enospc-detach', 'enospc-running'] as const;

describe('a full disk at each write of the flows, on the real daemon (qemu:///embed, the state directory a small tmpfs)', function () {
  this.timeout(120_000);
  let dir = '';
  let state = '';
  let files: LibvirtFiles;
  let daemon: DaemonProcess | undefined;
  let client: RpcClient;
  let filler = '';
  let imagePages = 0;
  const uuids = new Map<string, string>();
  let content = 0;
  const init = () => ({ configdrive: 1, hostname: `enospc-${String(content++)}` });

  const free = () => {
    const s = statfsSync(state);
    return s.bavail * s.bsize;
  };
  /** Grows or shrinks the filler so that exactly `bytes` stay free. */
  const leaveFree = (bytes: number) => {
    const size = statSync(filler).size + free() - bytes;
    const fd = openSync(filler, 'r+');
    try {
      const have = statSync(filler).size;
      if (size < have) ftruncateSync(fd, size);
      // Written, not truncated up: a sparse file takes no pages on tmpfs.
      for (let at = have; at < size; at += 1 << 20) writeSync(fd, Buffer.alloc(Math.min(1 << 20, size - at)), 0, Math.min(1 << 20, size - at), at);
    } finally {
      closeSync(fd);
    }
    assert.equal(free(), bytes, 'the filler leaves exactly the space asked for');
  };
  const roomy = () => leaveFree(free() + statSync(filler).size);
  const views = (name: string) => readViews(client, state, files, name, uuids.get(name)!);
  const running = (name: string) => existsSync(join(files.runDir, `${name}.xml`));
  const storeFiles = () => ['images', 'domains', 'builds'].flatMap((d) => readdirSync(join(state, d)).map((f) => `${d}/${f}`)).sort();
  const definitionWritten = (name: string) => statSync(join(files.configDir, `${name}.xml`), { bigint: true }).mtimeNs;

  /** The request fails with IO_ERROR naming ENOSPC and the file it could not write. */
  async function failsFull(method: string, params: Record<string, unknown>, file: RegExp): Promise<AgentError> {
    const err = await client.call(method, params).then(
      () => assert.fail(`${method} succeeded with the disk full`),
      (e: unknown) => e as AgentError,
    );
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.code, 'IO_ERROR', err.message);
    assert.match(err.message, /ENOSPC/);
    assert.match(err.message, file);
    return err;
  }

  /** Record, libvirt and QEMU as before, nothing new in the store, and the daemon answers. */
  async function unchanged(name: string, before: { files: string[]; record: unknown }): Promise<void> {
    const v = await views(name);
    assert.deepEqual(disagreements(v, state), [], JSON.stringify(v, null, 2));
    assert.deepEqual(v.file, before.record, 'the record is as it was');
    assert.deepEqual(storeFiles(), before.files, 'no file left in the store by the failed request');
    await client.call('Payload.list');
  }
  const snapshot = async (name: string) => ({ files: storeFiles(), record: (await views(name)).file });

  /** Gives the disk its space back and makes the same kind of request again: it must succeed and agree. */
  async function succeedsWithSpace(method: string, name: string, params: Record<string, unknown>): Promise<void> {
    roomy();
    await client.call(method, params);
    const v = await views(name);
    assert.deepEqual(disagreements(v, state), [], JSON.stringify(v, null, 2));
    const recorded = (await Promise.all(DOMAINS.map(views))).flatMap((x) => (x.get.payload === null ? [] : [x.get.payload.path]));
    assert.deepEqual(strayFiles(state, recorded), [], 'images no record names, or temp files');
  }

  /** Back to a domain with no drive and shut off, for the next case. */
  async function fresh(name: string): Promise<void> {
    roomy();
    if (running(name)) {
      process.kill((await views(name)).live!.pid, 'SIGTERM');
      for (let i = 0; i < 400 && running(name); i++) await new Promise((r) => setTimeout(r, 25));
    }
    if ((await views(name)).get.payload !== null) await client.call('Payload.detach', { domain: name });
    assert.equal((await views(name)).get.payload, null);
    // A detach keeps the domain's lineage in its record. The page arithmetic above needs a
    // domain without one: replacing a record nets no page, so no commit could fail.
    rmSync(join(state, 'domains', `${uuids.get(name)!}.json`), { force: true });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'enospc-'));
    state = join(dir, 'state');
    mkdirSync(state);
    // A tmpfs of our own, mounted and unmounted by this test only (we are root).
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0711', 'configdrive-enospc', state]);
    const root = join(dir, 'embed');
    const uri = await prepareEmbedRoot(root);
    files = { configDir: join(root, 'etc', 'qemu'), runDir: join(root, 'run', 'qemu') };
    for (const name of DOMAINS) {
      writeFileSync(join(dir, `${name}.xml`), domainXml({ name, machine: 'q35' }));
      assert.equal((await execa('virsh', ['-q', '-c', uri, `define ${join(dir, `${name}.xml`)}`], { reject: false })).exitCode, 0);
      uuids.set(name, (await execa('virsh', ['-q', '-c', uri, `domuuid ${name}`])).stdout.trim());
    }
    const sock = join(dir, 'd.sock');
    daemon = startDaemon(['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', state]);
    client = await connectWhenReady(daemon, sock);
    filler = join(state, 'filler');
    writeFileSync(filler, '');
    const attached = await client.call<{ size: number }>('Payload.attach', { domain: 'enospc-detach', initialization: init() });
    imagePages = Math.ceil(attached.size / PAGE);
  });
  after(async () => {
    client?.close();
    if (daemon !== undefined) {
      daemon.process.kill('SIGTERM');
      await daemon.process;
    }
    for (const name of DOMAINS) {
      const pid = join(files.runDir, `${name}.pid`);
      if (existsSync(pid)) process.kill(Number(readFileSync(pid, 'utf8').trim()), 'SIGKILL');
    }
    await execa('umount', ['-l', state], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [label, pages, file, libvirtTouched] of [
    ['the image write', -1, /images\//, false],
    ['the journal entry', 0, /domains\//, false],
    ['the commit', 1, /domains\//, true],
  ] as const) {
    it(`Payload.attach to a shut-off domain, disk full at ${label}: IO_ERROR ENOSPC, nothing attached or left behind, then it succeeds`, async () => {
      const name = 'enospc-attach';
      await fresh(name);
      const before = await snapshot(name);
      const written = definitionWritten(name);
      leaveFree((imagePages + pages) * PAGE);
      await failsFull('Payload.attach', { domain: name, initialization: init() }, file);
      await unchanged(name, before);
      // Whether libvirt was changed (and put back) tells which write failed: each change
      // rewrites the definition's file.
      assert.equal(definitionWritten(name) !== written, libvirtTouched, `libvirt's definition was ${libvirtTouched ? 'not ' : ''}changed before the failure`);
      assert.equal(running(name), false);
      await succeedsWithSpace('Payload.attach', name, { domain: name, initialization: init() });
    });
  }

  for (const [label, pages, file, started] of [
    ['the image write', -1, /images\//, false],
    ['the journal entry', 0, /domains\//, false],
    ['the commit, while the guest is paused', 1, /domains\//, true],
  ] as const) {
    it(`VM.start, disk full at ${label}: IO_ERROR ENOSPC, the domain shut off as it was, nothing left behind, then it starts`, async () => {
      const name = 'enospc-start';
      await fresh(name);
      const before = await snapshot(name);
      const log = join(dir, 'embed', 'log', 'qemu', `${name}.log`);
      const logSize = existsSync(log) ? statSync(log).size : 0;
      leaveFree((imagePages + pages) * PAGE);
      await failsFull('VM.start', { domain: name, initialization: init() }, file);
      await unchanged(name, before);
      assert.equal(running(name), false, 'the domain is shut off as it was');
      // QEMU logs each start: whether it ran tells which write failed.
      assert.equal((existsSync(log) ? statSync(log).size : 0) > logSize, started, `QEMU was ${started ? 'not ' : ''}started before the failure`);
      await succeedsWithSpace('VM.start', name, { domain: name, initialization: init() });
      assert.equal(running(name), true);
    });
  }

  // A running domain already has a record, whose page the journal entry's rename frees
  // again: the commit then always has its page, so only two writes can fail here.
  for (const [label, pages, file] of [
    ['the image write', -1, /images\//],
    ['the journal entry', 0, /domains\//],
  ] as const) {
    it(`Payload.attach to a running domain (a media change), disk full at ${label}: IO_ERROR ENOSPC, QEMU keeps the drive it had, nothing left behind, then it succeeds`, async () => {
      const name = 'enospc-running';
      roomy();
      if (!running(name)) await client.call('VM.start', { domain: name, initialization: init() });
      const before = await snapshot(name);
      const held = (await views(name)).qemuHolds;
      leaveFree((imagePages + pages) * PAGE);
      await failsFull('Payload.attach', { domain: name, initialization: init() }, file);
      await unchanged(name, before);
      assert.deepEqual((await views(name)).qemuHolds, held, 'QEMU has the same image open');
      await succeedsWithSpace('Payload.attach', name, { domain: name, initialization: init() });
    });
  }

  it('Payload.detach, disk full at its journal entry: IO_ERROR ENOSPC, the drive still attached and recorded, then it detaches', async () => {
    const name = 'enospc-detach';
    roomy();
    if ((await views(name)).get.payload === null) await client.call('Payload.attach', { domain: name, initialization: init() });
    const before = await snapshot(name);
    leaveFree(0);
    await failsFull('Payload.detach', { domain: name }, /domains\//);
    await unchanged(name, before);
    assert.notEqual((await views(name)).get.payload, null);
    await succeedsWithSpace('Payload.detach', name, { domain: name });
    assert.equal((await views(name)).get.payload, null);
  });

  it('Payload.build, disk full in the builds directory: IO_ERROR ENOSPC, no partial build left, then it builds', async () => {
    const before = storeFiles();
    leaveFree(PAGE);
    await failsFull('Payload.build', { initialization: init() }, /builds\//);
    assert.deepEqual(storeFiles(), before, 'no temp file or partial image in builds/');
    await client.call('Payload.list');
    roomy();
    const built = await client.call<{ path: string }>('Payload.build', { initialization: init() });
    assert.ok(built.path.startsWith(join(state, 'builds') + '/') && existsSync(built.path));
  });
});

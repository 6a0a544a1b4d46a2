/**
 * `configdrive wait` against the real daemon on qemu:///embed: a domain started with a
 * drive but no guest OS never reports, so it is `pending` (Payload.get says for how
 * long, and so does `configdrive get`), `wait` prints its progress and exits 124 at the
 * timeout; the state survives a daemon restart. The
 * done and error exits are the e2e suite's (a real guest reports).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { RpcClient } from '../../src/rpc/client.js';
import { domainXml } from '../helpers/libvirt.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DAEMON = resolve(HERE, '../../agent/configdrived.js');
const CLI = resolve(HERE, '../../agent/configdrive.js');

async function connect(path: string): Promise<RpcClient> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await RpcClient.connect(path);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

interface Got {
  initialization: { state: string; run: number; since: string; pendingSeconds?: number } | null;
}

describe('configdrive wait (the real daemon, qemu:///embed)', function () {
  this.timeout(240_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cli-wait-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('shows a guest that never reports as pending, with its progress, exits 124 at the timeout, and keeps the state over a restart', async () => {
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'wait-vm', macs: ['52:54:00:ab:00:01'] }));
    assert.equal((await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'vm.xml')}`], { reject: false })).exitCode, 0);
    const sock = join(dir, 'd.sock');
    const args = ['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')];
    const start = () => execa(process.execPath, [DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe', { file: '/dev/null' }, { file: '/dev/null' }], reject: false });
    const cli = (...a: string[]) => execa(process.execPath, [CLI, ...a, '--socket', sock], { reject: false });
    let daemon = start();
    let client = await connect(sock);
    try {
      await client.call('VM.start', { domain: 'wait-vm', initialization: 'configdrive: 1\nhostname: waiter\n' });
      const before = await client.call<Got>('Payload.get', { domain: 'wait-vm' });
      assert.equal(before.initialization?.state, 'pending');
      const t0 = performance.now();
      const waited = await cli('wait', 'wait-vm', '--timeout', '3');
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(waited.exitCode, 124, waited.stderr);
      assert.match(waited.stderr, /^wait-vm: 0 s, pending since \S+$/m, 'a progress line');
      assert.match(waited.stderr, /no report within 3 s/);
      assert.ok(seconds >= 3 && seconds < 10, `waited ${seconds.toFixed(1)} s`);
      const get = await cli('get', 'wait-vm');
      assert.match(get.stdout, /^initialized {2}pending since \S+ \(\d+ s\)$/m, get.stdout);
      const missing = await cli('wait', 'no-such-vm', '--timeout', '1');
      assert.equal(missing.exitCode, 1);
      assert.match(missing.stderr, /DOMAIN_NOT_FOUND/);
      assert.equal((await cli('wait', 'wait-vm', '--timeout', 'soon')).exitCode, 2);
      client.close();
      daemon.kill('SIGTERM');
      assert.equal((await daemon).exitCode, 0);
      // Restarted: the same run, still pending since the same moment (the reconnection itself
      // is pinned by test/integration/init-channel.test.ts).
      daemon = start();
      client = await connect(sock);
      const after = await client.call<Got>('Payload.get', { domain: 'wait-vm' });
      assert.equal(after.initialization?.state, 'pending');
      assert.equal(after.initialization?.run, before.initialization?.run);
      assert.equal(after.initialization?.since, before.initialization?.since);
      assert.ok((after.initialization?.pendingSeconds ?? 0) >= 3);
    } finally {
      client.close();
      daemon.kill('SIGTERM');
      await daemon;
      await execa('virsh', ['-q', '-c', uri, 'destroy wait-vm'], { reject: false });
    }
  });
});

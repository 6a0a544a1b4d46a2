/**
 * VM.start cut off by a SIGKILL while libvirtd starts the guest paused: libvirtd, a
 * process of its own, finishes the start; the agent never resumes it. README "Safety"
 * promises a VM.start either done or undone ("destroyed or left shut off as it was"),
 * so after a restart the domain must run with the drive or be shut off without it;
 * paused is neither, and nothing ever resumes it (the next VM.start refuses a paused
 * domain). Deterministic: the kill comes while libvirtd's start job is still running,
 * before the agent can have resumed anything.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { connectWhenReady, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { domainXml } from '../helpers/libvirt.js';
import { startPrivateLibvirtd, type PrivateLibvirtd } from '../helpers/private-libvirtd.js';
import { disagreements, readViews, type LibvirtFiles } from '../helpers/three-views.js';

describe('VM.start cut off by SIGKILL during the paused start, on libvirtd', function () {
  this.timeout(120_000);
  let dir = '';
  let libvirtd: PrivateLibvirtd | undefined;
  let daemon: DaemonProcess | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'start-paused-'));
    // QEMU is another user here: it must pass through the test's directory to the images.
    chmodSync(dir, 0o711);
    libvirtd = await startPrivateLibvirtd();
  });
  after(async () => {
    if (daemon !== undefined) {
      daemon.process.kill('SIGTERM');
      await daemon.process;
    }
    await libvirtd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the domain running with its drive or shut off without it after a restart, never paused', async () => {
    const uri = libvirtd!.uri;
    const files: LibvirtFiles = { configDir: join(libvirtd!.dir, 'etc', 'qemu'), runDir: join(libvirtd!.dir, 'run', 'qemu') };
    writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'paused-vm', machine: 'q35' }));
    assert.equal((await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'vm.xml')}`], { reject: false })).exitCode, 0);
    const uuid = (await execa('virsh', ['-q', '-c', uri, 'domuuid paused-vm'])).stdout.trim();
    const state = join(dir, 'state');
    const sock = join(dir, 'd.sock');
    const args = ['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', state];
    daemon = startDaemon(args);
    let client = await connectWhenReady(daemon, sock);
    const status = join(files.runDir, 'paused-vm.xml');
    const call = client.call('VM.start', { domain: 'paused-vm', initialization: { configdrive: 1, hostname: 'paused' } }).catch(() => undefined);
    // libvirtd writes the status file when it starts QEMU, inside its start job.
    for (let i = 0; i < 2000 && !existsSync(status); i++) await new Promise((r) => setTimeout(r, 2));
    assert.ok(existsSync(status), 'libvirtd started QEMU');
    daemon.process.kill('SIGKILL');
    await daemon.process;
    await call;
    client.close();
    assert.match(readFileSync(status, 'utf8'), /<domstatus state='paused'/, 'the kill came during the paused start');

    daemon = startDaemon(args);
    client = await connectWhenReady(daemon, sock);
    // libvirtd finishes the job the killed agent started: judged once it has.
    for (let i = 0; i < 200 && /<job\b[^>]*\basync='(?!none')/.test(existsSync(status) ? readFileSync(status, 'utf8') : ''); i++) await new Promise((r) => setTimeout(r, 50));
    const v = await readViews(client, state, files, 'paused-vm', uuid);
    client.close();
    assert.deepEqual(disagreements(v, state), [], JSON.stringify(v, null, 2));
    const outcome = v.live === null ? 'shut off' : v.live.state;
    assert.ok(
      (outcome === 'running' && v.get.payload !== null) || (outcome === 'shut off' && v.get.payload === null),
      `after the restart the domain is ${outcome}${v.live === null ? '' : ` (${v.live.reason})`} with ${v.get.payload === null ? 'no drive' : 'the drive'} recorded: a VM.start neither done nor undone`,
    );
  });
});

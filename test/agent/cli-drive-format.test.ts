/**
 * `configdrive start` and `attach` with --format, against the real daemon on
 * qemu:///embed: the daemon builds the layout asked for, and a format the agent does not
 * know, or one given with a drive built earlier, is a usage error before anything is sent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { connectWhenReady, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { domainXml } from '../helpers/libvirt.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../agent/configdrive.js');

describe('configdrive start/attach --format (the real daemon, qemu:///embed)', function () {
  this.timeout(120_000);
  let dir = '';
  let daemon: DaemonProcess | undefined;
  let sock = '';
  const cli = (...a: string[]) => execa(process.execPath, [CLI, ...a, '--socket', sock], { reject: false });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cli-format-'));
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'format-vm', macs: ['52:54:00:ab:01:01'] }));
    assert.equal((await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'vm.xml')}`], { reject: false })).exitCode, 0);
    writeFileSync(join(dir, 'init.yaml'), 'configdrive: 1\nhostname: formatted\n');
    sock = join(dir, 'd.sock');
    daemon = startDaemon(['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')]);
    (await connectWhenReady(daemon, sock)).close();
  });
  after(async () => {
    daemon?.process.kill('SIGTERM');
    await daemon?.process;
    rmSync(dir, { recursive: true, force: true });
  });

  it('attaches a NoCloud drive (label cidata) with --format nocloud, and config-2 without it', async () => {
    const nocloud = await cli('attach', 'format-vm', join(dir, 'init.yaml'), '--format', 'nocloud', '--json');
    assert.equal(nocloud.exitCode, 0, nocloud.stderr);
    assert.equal((JSON.parse(nocloud.stdout) as { label: string }).label, 'cidata');
    const plain = await cli('attach', 'format-vm', join(dir, 'init.yaml'));
    assert.equal(plain.exitCode, 0, plain.stderr);
    assert.match(plain.stdout, /^image {8}\d+ bytes, label config-2, /m);
  });

  it('refuses a format it does not know, and --format with a drive built earlier, with exit status 2', async () => {
    const unknown = await cli('start', 'format-vm', join(dir, 'init.yaml'), '--format', 'iso9660');
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /--format must be configdrive or nocloud, not 'iso9660'/);
    const iso = await cli('attach', 'format-vm', join(dir, 'earlier.iso'), '--format', 'nocloud');
    assert.equal(iso.exitCode, 2);
    assert.match(iso.stderr, /--format is for an initialization file/);
    assert.match(daemon!.log(), /method=Payload\.attach /, 'the daemon served the attaches');
    assert.doesNotMatch(daemon!.log(), /method=VM\.start /, 'nothing was sent for the refused ones');
  });
});

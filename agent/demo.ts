/**
 * `npm run demo`: the main job end to end on this machine, with nothing but what
 * tools/setup-host installed. It starts configdrived on the embedded default
 * (qemu:///embed, real QEMU, no libvirtd), defines a small demo domain, sends the
 * seed's <initialization> XML through the socket with VM.start, prints what was
 * attached, the verification and the drive's files, and cleans everything up.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readIsoFile } from '../src/iso/index.js';
import { domainType, embedUri, prepareEmbedRoot } from '../src/libvirt/embed.js';
import { RpcClient } from '../src/rpc/client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SEED_XML = resolve(HERE, '../../test/fixtures/seed/initialization.xml');
const MACS = ['52:54:00:c0:ff:01', '52:54:00:c0:ff:02', '52:54:00:c0:ff:03'];

const step = (text: string) => process.stdout.write(`\n== ${text}\n`);
const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;

function demoDomainXml(): string {
  return `<domain type='${domainType()}'>
  <name>configdrive-demo</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${MACS.map((m) => `    <interface type='user'><mac address='${m}'/><model type='virtio'/></interface>`).join('\n')}
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

function spawnDaemon(args: readonly string[]) {
  // Descriptors 3 and 4 taken before Node starts: see src/libvirt/fork-guard.ts.
  return execa(process.execPath, [resolve(HERE, 'configdrived.js'), ...args], {
    stdio: ['ignore', 'inherit', 'pipe', { file: '/dev/null' }, { file: '/dev/null' }],
    reject: false,
  });
}

type Daemon = ReturnType<typeof spawnDaemon>;

async function waitForSocket(path: string, daemon: Daemon): Promise<RpcClient> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await RpcClient.connect(path);
    } catch (err) {
      if (Date.now() > deadline || daemon.exitCode !== null) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'configdrive-demo-'));
  const root = join(dir, 'embed');
  const uri = embedUri(root);
  const virsh = (commands: string) => execa('virsh', ['-q', '-c', uri, commands], { reject: false });
  let daemon: Daemon | undefined;
  try {
    step(`define a demo domain (i440fx, 128 MiB, 3 NICs, ${domainType() === 'kvm' ? 'KVM' : 'TCG: no full KVM module on this host'})`);
    await prepareEmbedRoot(root);
    writeFileSync(join(dir, 'domain.xml'), demoDomainXml());
    // virsh opens the embed root, defines, and exits: one process at a time may hold it.
    const defined = await virsh(`define ${join(dir, 'domain.xml')}`);
    if (defined.exitCode !== 0) throw new Error(`virsh define failed: ${String(defined.stderr)}`);
    process.stdout.write(`defined configdrive-demo in ${uri}\n`);

    step('start configdrived on the embedded default');
    const socket = join(dir, 'configdrived.sock');
    let t = performance.now();
    const running = spawnDaemon(['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', socket, '--state-dir', join(dir, 'state')]);
    daemon = running;
    running.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (/ (info|warning|error) /.test(line) && !/ : /.test(line)) process.stdout.write(`  daemon: ${line}\n`);
    });
    const client = await waitForSocket(socket, running);
    process.stdout.write(`socket ${socket} answers after ${ms(t)}\n`);
    client.onNotification((method, params) => process.stdout.write(`  notification: ${method} ${JSON.stringify(params)}\n`));

    step("VM.start with the seed's <initialization> XML");
    const xml = readFileSync(SEED_XML, 'utf8');
    process.stdout.write(xml.split('\n').slice(0, 6).map((l) => `  ${l}`).join('\n') + '\n  ...\n');
    t = performance.now();
    const result = await client.call<{ domain: { name: string; uuid: string }; device: { bus: string; target: string }; path: string; size: number; sha256: string; instanceId: string; generation: number; reason: string; verified: { label: string; files: number; liveSource: boolean } }>('VM.start', {
      domain: 'configdrive-demo',
      initialization: xml,
      format: 'xml',
    });
    process.stdout.write(`VM.start answered in ${ms(t)} (build, store, define, start paused, verify, resume)\n`);
    process.stdout.write(`attached     ${result.device.bus} ${result.device.target} <- ${result.path}\n`);
    process.stdout.write(`image        ${String(result.size)} bytes, sha256 ${result.sha256}\n`);
    process.stdout.write(`instance-id  ${result.instanceId} (generation ${String(result.generation)}, ${result.reason})\n`);
    process.stdout.write(`verified     label ${result.verified.label}; ${String(result.verified.files)} files read back from disk match; live XML shows the drive: ${String(result.verified.liveSource)}\n`);
    const state = await recordedState(client);
    process.stdout.write(`domain state ${state}\n`);

    step("the drive's files, as the guest will read them");
    const image = await readIsoFile(result.path);
    process.stdout.write(`label ${image.volumeId}, Rock Ridge ${String(image.extensions.rockRidge)}, Joliet ${String(image.extensions.joliet)}\n`);
    for (const [path, bytes] of image.files) {
      process.stdout.write(`\n--- ${path} (${String(bytes.length)} bytes)\n${Buffer.from(bytes).toString('utf8').trimEnd()}\n`);
    }

    step('clean up');
    const detached = await client.call<{ deferred: string | null }>('Payload.detach', { domain: 'configdrive-demo' });
    process.stdout.write(
      detached.deferred === null
        ? "Payload.detach: drive ejected, removed from the definition, image deleted; the record keeps the domain's instance lineage\n"
        : `Payload.detach: removed from the definition; ${detached.deferred}\n`,
    );
    client.close();
    running.kill('SIGTERM');
    const exit = await running;
    process.stdout.write(`configdrived stopped with status ${String(exit.exitCode)}\n`);
    daemon = undefined;
    return 0;
  } finally {
    daemon?.kill('SIGKILL');
    await daemon?.catch(() => undefined);
    await virsh('destroy configdrive-demo');
    await virsh('undefine configdrive-demo');
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`removed ${dir}\n`);
  }
}

async function recordedState(client: RpcClient): Promise<string> {
  const r = await client.call<{ payload: unknown }>('Payload.get', { domain: 'configdrive-demo' });
  return r.payload === null ? 'no drive' : 'running, drive recorded in the domain metadata';
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});

/**
 * VM.start on real QEMU (TCG on hosts without a full KVM module), on both kinds of host
 * in one run: qemu:///embed, and a libvirt daemon with QEMU as libvirt-qemu
 * (tools/private-libvirtd, Debian's stock configuration, as qemu:///system runs). On each:
 *   - the agent's VM.start (build, store, attach, start paused, verify, resume), each
 *     time with new settings so nothing is skipped;
 *   - the shell pipeline a user would write instead: genisoimage, then virsh start
 *     --paused, virsh change-media --live --insert, virsh resume;
 *   - a bare virDomainCreateWithFlags of a domain without the drive, the floor for any
 *     start, interleaved with the agent's starts so both see the same machine.
 *
 *   npm run build && node dist/bench/vm-start.js 3</dev/null 4</dev/null   (as root)
 */
import { execa } from 'execa';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../agent/daemon/store-setup.js';
import { buildDriveTree } from '../src/cloudinit/index.js';
import { parseInitialization } from '../src/initialization/index.js';
import { domainType, prepareEmbedRoot } from '../src/libvirt/embed.js';
import { forkSafeDescriptors } from '../src/libvirt/fork-guard.js';
import { Hypervisor } from '../src/libvirt/hypervisor.js';
import { CONFIG_TABLE } from '../src/config/config.js';
import { BuildPool } from '../src/payload/build-pool.js';
import { VmService } from '../src/vm/service.js';
import { startPrivateLibvirtd } from '../test/helpers/private-libvirtd.js';
import { formatMs, summarize, table } from './lib/timing.js';
import { SEED_XML } from './lib/seed.js';

const RUNS = 9;
const MACS = ['52:54:00:be:00:01', '52:54:00:be:00:02', '52:54:00:be:00:03'];
const INIT = parseInitialization(SEED_XML).initialization;

function xml(name: string, emptyCd: boolean): string {
  return `<domain type='${domainType()}'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
${emptyCd ? "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>" : ''}
${MACS.map((m) => `<interface type='user'><mac address='${m}'/></interface>`).join('')}<memballoon model='none'/></devices></domain>`;
}

if (!forkSafeDescriptors()) {
  process.stderr.write('run me as: node dist/bench/vm-start.js 3</dev/null 4</dev/null (see src/libvirt/fork-guard.ts)\n');
  process.exit(2);
}

/** Start times in ms of the shell pipeline, through virsh on `uri`. */
async function shellPipeline(uri: string, dir: string): Promise<number[]> {
  const virsh = async (cmd: string) => {
    const r = await execa('virsh', ['-q', '-c', uri, cmd], { reject: false });
    if (r.exitCode !== 0 && !/destroy/.test(cmd)) throw new Error(`virsh ${cmd}: ${String(r.stderr)}`);
  };
  writeFileSync(join(dir, 'shell.xml'), xml('shell-vm', true));
  await virsh(`define ${join(dir, 'shell.xml')}`);
  const times: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const tree = buildDriveTree({ ...INIT, hostName: `shell${String(i)}` }, { uuid: `bench-${String(i)}`, nics: MACS.map((mac) => ({ mac })) }).tree;
      const src = join(dir, `src${String(i)}`);
      for (const [p, b] of tree) {
        await execa('mkdir', ['-p', join(src, p, '..')]);
        writeFileSync(join(src, p), b);
      }
      const t = performance.now();
      await execa('genisoimage', ['-quiet', '-R', '-J', '-V', 'config-2', '-o', join(dir, `shell${String(i)}.iso`), src]);
      await virsh('start --paused shell-vm');
      await virsh(`change-media shell-vm hdc ${join(dir, `shell${String(i)}.iso`)} --insert --live`);
      await virsh('resume shell-vm');
      times.push(performance.now() - t);
      await virsh('destroy shell-vm');
    }
  } finally {
    await virsh('destroy shell-vm');
    await virsh('undefine shell-vm');
  }
  return times;
}

/**
 * The agent's VM.start as the daemon runs it (the request's XML parsed and built on a
 * build thread of the default pool), and a bare start, interleaved, over one connection.
 */
async function agentAndBare(uri: string, dir: string): Promise<{ agent: number[]; bare: number[] }> {
  const hv = await Hypervisor.open(uri);
  try {
    const { store } = await openStore(hv, { stateDir: join(dir, 'state'), isoGroup: '' });
    const builder = new BuildPool({ threads: CONFIG_TABLE.buildThreads.default, idleMs: CONFIG_TABLE.buildThreadIdleMs.default });
    const service = new VmService({ hv, store, builder, writer: 'builtin' });
    const agentVm = await hv.define(xml('agent-vm', false));
    const bareVm = await hv.define(xml('bare-vm', false));
    const agent: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let t = performance.now();
      await service.start('agent-vm', { kind: 'initialization', document: SEED_XML.toString('utf8').replace('cloudInitInstanceName', `agent${String(i)}`), format: 'xml' });
      agent.push(performance.now() - t);
      await hv.destroy(agentVm);
      t = performance.now();
      await hv.start(bareVm, { paused: false });
      bare.push(performance.now() - t);
      await hv.destroy(bareVm);
    }
    for (const d of [agentVm, bareVm]) await hv.undefine(d);
    await builder.close();
    return { agent, bare };
  } finally {
    await hv.close();
  }
}

function rows(host: string, shell: number[], agent: number[], bare: number[]): string[][] {
  const a = summarize(agent);
  const s = summarize(shell);
  const b = summarize(bare);
  return [
    [`${host}: agent VM.start (build, store, attach, verify, resume)`, formatMs(a.median), formatMs(Math.max(...agent)), '1.0x'],
    [`${host}: shell, genisoimage + virsh start --paused/change-media/resume`, formatMs(s.median), formatMs(Math.max(...shell)), `${(s.median / a.median).toFixed(2)}x the agent`],
    [`${host}: bare virDomainCreateWithFlags (no drive)`, formatMs(b.median), formatMs(Math.max(...bare)), `agent ${(((a.median - b.median) / b.median) * 100).toFixed(0)}% over`],
  ];
}

const dir = mkdtempSync(join(tmpdir(), 'bench-vm-start-'));
// QEMU under libvirtd is another user: it must be able to pass through to the images.
chmodSync(dir, 0o711);
const results: string[][] = [];
try {
  // The embedded root admits one process at a time: virsh first, then this process.
  const embedDir = join(dir, 'embed-host');
  const embed = await prepareEmbedRoot(join(embedDir, 'root'));
  const embedShell = await shellPipeline(embed, dir);
  const embedRuns = await agentAndBare(embed, embedDir);
  results.push(...rows('qemu:///embed', embedShell, embedRuns.agent, embedRuns.bare));

  const daemon = await startPrivateLibvirtd();
  try {
    const systemDir = join(dir, 'libvirtd-host');
    const systemShell = await shellPipeline(daemon.uri, dir);
    const systemRuns = await agentAndBare(daemon.uri, systemDir);
    results.push(...rows('libvirtd', systemShell, systemRuns.agent, systemRuns.bare));
  } finally {
    await daemon.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`node ${process.version}, ${new Date().toISOString()}, ${domainType() === 'kvm' ? 'KVM' : 'TCG'}, ${String(RUNS)} starts each`);
console.log('libvirtd: a private libvirtd with Debian 12\'s stock configuration, QEMU as libvirt-qemu (tools/private-libvirtd)\n');
console.log(table(['path', 'median', 'max', 'vs agent'], results));

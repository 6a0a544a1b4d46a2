/**
 * Issue 4's benchmark, on real QEMU (qemu:///embed, TCG on hosts without a full KVM
 * module), in one run:
 *   - the agent's VM.start (build, store, define, start paused, verify, resume), each
 *     time with new settings so nothing is skipped;
 *   - the shell pipeline a user would write instead: genisoimage, then virsh start
 *     --paused, virsh change-media --live --insert, virsh resume;
 *   - a bare virDomainCreateWithFlags of the same domain, the floor for any start.
 *
 *   npm run build && node dist/bench/vm-start.js   (as root; runs 5 starts of each)
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriveTree } from '../src/cloudinit/index.js';
import { parseInitialization } from '../src/initialization/index.js';
import { createIsoWriter } from '../src/iso/index.js';
import { domainType, prepareEmbedRoot } from '../src/libvirt/embed.js';
import { forkSafeDescriptors } from '../src/libvirt/fork-guard.js';
import { Hypervisor } from '../src/libvirt/hypervisor.js';
import { PayloadStore } from '../src/payload/store.js';
import { VmService } from '../src/vm/service.js';
import { formatMs, summarize, table } from './lib/timing.js';
import { SEED_XML } from './lib/seed.js';

const RUNS = 9;
const MACS = ['52:54:00:be:00:01', '52:54:00:be:00:02', '52:54:00:be:00:03'];

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

const dir = mkdtempSync(join(tmpdir(), 'bench-vm-start-'));
const uri = await prepareEmbedRoot(join(dir, 'embed'));
const virsh = async (cmd: string) => {
  const r = await execa('virsh', ['-q', '-c', uri, cmd], { reject: false });
  if (r.exitCode !== 0 && !/destroy/.test(cmd)) throw new Error(`virsh ${cmd}: ${String(r.stderr)}`);
};
try {
  // 1. The shell pipeline, while no other process holds the embed root.
  writeFileSync(join(dir, 'shell.xml'), xml('shell-vm', true));
  await virsh(`define ${join(dir, 'shell.xml')}`);
  const init = parseInitialization(SEED_XML).initialization;
  const shell: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const tree = buildDriveTree({ ...init, hostName: `shell${String(i)}` }, { uuid: `bench-${String(i)}`, nics: MACS.map((mac) => ({ mac })) }).tree;
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
    shell.push(performance.now() - t);
    await virsh('destroy shell-vm');
  }

  // 2. The agent and the bare start, in this process.
  const hv = await Hypervisor.open(uri);
  const store = new PayloadStore({ dir: join(dir, 'state') });
  await store.init();
  const service = new VmService({ hv, store, writer: createIsoWriter('builtin') });
  const agentVm = await hv.define(xml('agent-vm', false));
  const bareVm = await hv.define(xml('bare-vm', false));
  const agent: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    await service.start('agent-vm', { ...init, hostName: `agent${String(i)}` });
    agent.push(performance.now() - t);
    await hv.destroy(agentVm);
    t = performance.now();
    await hv.start(bareVm, { paused: false });
    bare.push(performance.now() - t);
    await hv.destroy(bareVm);
  }
  await hv.close();

  const a = summarize(agent);
  const s = summarize(shell);
  const b = summarize(bare);
  console.log(`node ${process.version}, ${new Date().toISOString()}, ${domainType() === 'kvm' ? 'KVM' : 'TCG'}, ${String(RUNS)} starts each\n`);
  console.log(
    table(
      ['path', 'median', 'max', 'vs agent'],
      [
        ['agent VM.start (build, store, attach, verify, resume)', formatMs(a.median), formatMs(Math.max(...agent)), '1.0x'],
        ['shell: genisoimage + virsh start --paused/change-media/resume', formatMs(s.median), formatMs(Math.max(...shell)), `${(s.median / a.median).toFixed(1)}x slower`],
        ['bare virDomainCreateWithFlags (no drive)', formatMs(b.median), formatMs(Math.max(...bare)), `agent is ${(((a.median - b.median) / b.median) * 100).toFixed(0)}% over`],
      ],
    ),
  );
} finally {
  await virsh('destroy shell-vm');
  rmSync(dir, { recursive: true, force: true });
}

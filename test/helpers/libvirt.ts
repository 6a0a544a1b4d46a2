/**
 * Real libvirt for tests, on the two kinds of host the agent serves:
 *  - `qemu:///embed`: a private embedded root per process (an embed root admits one
 *    process at a time), QEMU as root inside the test process;
 *  - a real libvirt daemon (tools/private-libvirtd): Debian's stock configuration,
 *    QEMU as libvirt-qemu with DAC relabelling, on a socket of its own.
 * Domains need no guest OS: the firmware alone is enough for QEMU to have the devices
 * libvirt reports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainType, prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { Hypervisor } from '../../src/libvirt/hypervisor.js';
import { startPrivateLibvirtd } from './private-libvirtd.js';

export interface TestLibvirt {
  readonly hv: Hypervisor;
  /** What the test's title calls it. */
  readonly kind: 'embed' | 'libvirtd';
  /** Destroys and undefines the domains this caller defined; the connection stays. */
  close(): Promise<void>;
}

/** The two hosts every VM-flow test runs on, opened on first use and shared by the process. */
export const LIBVIRT_TARGETS: readonly { readonly kind: TestLibvirt['kind']; readonly title: string; readonly open: () => Promise<TestLibvirt> }[] = [
  { kind: 'embed', title: 'qemu:///embed', open: openEmbedded },
  { kind: 'libvirtd', title: 'libvirtd, QEMU as libvirt-qemu', open: openLibvirtd },
];

interface Shared {
  readonly hv: Hypervisor;
  stop(): Promise<void>;
}

/**
 * libvirt runs one embedded QEMU driver per process (opening a second root after closing
 * the first crashes libvirt 9.0), and a private daemon takes seconds to start, so every
 * test file in this process shares one of each, closed after the whole run; each file
 * cleans up its own domains.
 */
const shared = new Map<TestLibvirt['kind'], Promise<Shared>>();

/** More call threads than the daemon's two: test files tear down many domains at once. */
const TEST_CONNECTION = { workers: 6 };

async function scoped(kind: TestLibvirt['kind'], start: () => Promise<Shared>): Promise<TestLibvirt> {
  let entry = shared.get(kind);
  if (entry === undefined) {
    entry = start();
    shared.set(kind, entry);
  }
  const { hv } = await entry;
  const existing = new Set((await hv.listDomains()).map((d) => d.uuid));
  return {
    hv,
    kind,
    async close() {
      // In parallel: QEMU takes one to two seconds to go under TCG, and a file leaves 20+.
      const ours = (await hv.listDomains().catch(() => [])).filter((d) => !existing.has(d.uuid));
      await Promise.all(ours.map(async (d) => {
        await hv.destroy(d).catch(() => undefined);
        await hv.undefine(d).catch(() => undefined);
      }));
    },
  };
}

export function openEmbedded(): Promise<TestLibvirt> {
  return scoped('embed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'embed-'));
    const hv = await Hypervisor.open(await prepareEmbedRoot(root), TEST_CONNECTION);
    return {
      hv,
      async stop() {
        await hv.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  });
}

export function openLibvirtd(): Promise<TestLibvirt> {
  return scoped('libvirtd', async () => {
    const daemon = await startPrivateLibvirtd();
    const hv = await Hypervisor.open(daemon.uri, TEST_CONNECTION);
    return {
      hv,
      async stop() {
        await hv.close();
        await daemon.stop();
      },
    };
  });
}

// A root-level hook: runs once, after every test file of the run.
after(async () => {
  for (const entry of shared.values()) await (await entry.catch(() => undefined))?.stop();
  shared.clear();
});

export interface TestDomain {
  readonly name: string;
  readonly machine?: 'pc' | 'q35';
  readonly macs?: readonly string[];
  /** An install CD: a real ISO path on the chipset's own CD bus, first in boot order. */
  readonly installCd?: string;
  readonly virtioScsi?: boolean;
  readonly memoryMiB?: number;
}

export function domainXml(d: TestDomain): string {
  const q35 = d.machine === 'q35';
  const cdBus = q35 ? 'sata' : 'ide';
  const cdDev = q35 ? 'sda' : 'hdc';
  return `<domain type='${domainType()}'>
  <name>${d.name}</name>
  <memory unit='MiB'>${String(d.memoryMiB ?? 64)}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='${q35 ? 'q35' : 'pc'}'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    ${d.installCd === undefined ? '' : `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${d.installCd}'/><target dev='${cdDev}' bus='${cdBus}'/><readonly/><boot order='1'/></disk>`}
    ${d.virtioScsi === true ? "<controller type='scsi' model='virtio-scsi'/>" : ''}
    ${(d.macs ?? []).map((m) => `<interface type='user'><mac address='${m}'/><model type='virtio'/></interface>`).join('\n    ')}
    <memballoon model='none'/>
  </devices>
</domain>`;
}

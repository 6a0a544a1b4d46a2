/**
 * Real libvirt for tests: a private qemu:///embed root per test file (an embed root
 * admits one process at a time), and small domains that need no guest OS: the firmware
 * alone is enough for QEMU to have the devices libvirt reports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainType, prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { Hypervisor } from '../../src/libvirt/hypervisor.js';

export interface EmbeddedLibvirt {
  readonly hv: Hypervisor;
  readonly root: string;
  /** Destroys and undefines the domains this caller defined; the connection stays. */
  close(): Promise<void>;
}

/**
 * libvirt runs one embedded QEMU driver per process (opening a second root after closing
 * the first crashes libvirt 9.0), so every test file in this process shares one root and
 * one connection, closed after the whole run; each file cleans up its own domains.
 */
let shared: Promise<{ hv: Hypervisor; root: string }> | undefined;

export async function openEmbedded(): Promise<EmbeddedLibvirt> {
  shared ??= (async () => {
    const root = mkdtempSync(join(tmpdir(), 'embed-'));
    return { hv: await Hypervisor.open(await prepareEmbedRoot(root)), root };
  })();
  const { hv, root } = await shared;
  const existing = new Set((await hv.listDomains()).map((d) => d.uuid));
  return {
    hv,
    root,
    async close() {
      for (const d of await hv.listDomains().catch(() => [])) {
        if (existing.has(d.uuid)) continue;
        await hv.destroy(d).catch(() => undefined);
        await hv.undefine(d).catch(() => undefined);
      }
    },
  };
}

// A root-level hook: runs once, after every test file of the run.
after(async () => {
  if (shared === undefined) return;
  const { hv, root } = await shared.catch(() => ({ hv: undefined, root: undefined }));
  await hv?.close();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
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

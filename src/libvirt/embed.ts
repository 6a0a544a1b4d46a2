/**
 * qemu:///embed?root=DIR: libvirt's QEMU driver running inside the agent's process, no
 * libvirtd. Measured on Debian 12 (libvirt 9.0): the driver refuses to start unless the
 * user and group it was built for (libvirt-qemu, libvirt-qemu/kvm) exist, which only
 * libvirt-daemon-system would create (tools/setup-host creates them); and without
 * `stdio_handler = "file"` in DIR/etc/qemu.conf a start waits about 50 s for virtlogd.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A full KVM module (not the paravirtual kvm_pvm these hosts have): guests run at speed. */
export function kvmUsable(): boolean {
  return existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd');
}

/** `<domain type=...>` for this host: kvm when usable, qemu (TCG) otherwise. */
export function domainType(): 'kvm' | 'qemu' {
  return kvmUsable() ? 'kvm' : 'qemu';
}

export function embedUri(root: string): string {
  return `qemu:///embed?root=${encodeURI(root)}`;
}

/** Who QEMU runs as under the qemu.conf below. */
export const EMBEDDED_QEMU = { uid: 0, gid: 0 } as const;

/**
 * Writes DIR/etc/qemu.conf for an agent running as root: QEMU logs to files (no
 * virtlogd), runs as root (the agent owns the images it hands QEMU), no security driver
 * and no mount namespace (neither AppArmor profiles nor a private /dev are set up for
 * an embedded root), and no DAC relabelling: root needs no chown to open anything, and
 * relabelling would leave libvirt's ownership xattrs on every file a guest used.
 * Idempotent.
 */
export async function prepareEmbedRoot(root: string): Promise<string> {
  await mkdir(join(root, 'etc'), { recursive: true, mode: 0o700 });
  await writeFile(
    join(root, 'etc', 'qemu.conf'),
    [
      '# Written by configdrive-agent for qemu:///embed; see src/libvirt/embed.ts.',
      'stdio_handler = "file"',
      'user = "root"',
      'group = "root"',
      'security_driver = "none"',
      'dynamic_ownership = 0',
      'namespaces = []',
      '',
    ].join('\n'),
  );
  return embedUri(root);
}

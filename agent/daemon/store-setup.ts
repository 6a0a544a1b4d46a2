/**
 * The payload store as this host needs it: images in the group QEMU runs with, and a
 * start-up proof that QEMU could open them. QEMU's uid and gid come from libvirt itself
 * (the DAC label in its capabilities), so the same code is right for Debian's
 * libvirt-qemu, RHEL's qemu, a qemu.conf naming another user, and the embedded driver
 * (QEMU as root).
 */
import type { Config } from '../../src/config/config.js';
import { domainType, EMBEDDED_QEMU } from '../../src/libvirt/embed.js';
import { isInProcessUri } from '../../src/libvirt/fork-guard.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import { qemuIdentityOnHost, type Identity } from '../../src/payload/qemu-access.js';
import { PayloadStore } from '../../src/payload/store.js';
import { qemuIdentity } from '../../src/vm/host-capabilities.js';
import { groupId } from './system.js';

export interface StoreSetup {
  readonly store: PayloadStore;
  /** Undefined when libvirt has no DAC driver: QEMU then runs with libvirt's own identity. */
  readonly qemu?: Identity;
}

/** Throws HOST_SETUP, naming the directory or group in the way, when QEMU could not read an image. */
export async function openStore(hv: Hypervisor, config: Pick<Config, 'stateDir' | 'isoGroup'>): Promise<StoreSetup> {
  // The embedded driver runs QEMU as root (src/libvirt/embed.ts writes its qemu.conf), and
  // asking a fresh embedded root for its capabilities costs a 7 s probe of QEMU.
  const label = isInProcessUri(hv.uri) ? EMBEDDED_QEMU : qemuIdentity(await hv.capabilities(), domainType());
  const imageGid = config.isoGroup !== '' ? await groupId(config.isoGroup) : label?.gid;
  const store = new PayloadStore({ dir: config.stateDir, ...(imageGid === undefined ? {} : { imageGid }) });
  await store.init();
  if (label === undefined) return { store };
  const qemu = await qemuIdentityOnHost(label.uid, label.gid);
  await store.assertReadableBy(qemu);
  return { store, qemu };
}

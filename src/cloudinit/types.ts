/**
 * What the translators need to know about the domain, and what they produce.
 */

/** Facts read from the libvirt domain (or given on the command line for offline builds). */
export interface DomainFacts {
  /**
   * The domain UUID, which QEMU exposes as SMBIOS system-uuid. Never an instance-id on
   * its own: cloud-init trusts a cached instance whose id equals it without reading any
   * drive (src/payload/instance-lineage.ts).
   */
  readonly uuid: string;
  /** The domain name, for meta_data.json `name` when no host name is set. */
  readonly name?: string;
  /** The domain's NICs in definition order; the Nth is what a request calls `eth<N>`. */
  readonly nics: readonly { readonly mac: string }[];
  /**
   * The daemon's report key (hex): when given, the drive carries the guest half of
   * VM.initialized (init-reporter.ts) with a nonce derived from it. Offline builds, which
   * no daemon listens for, have none.
   */
  readonly reportKey?: string;
  /**
   * The nonce a drive of the domain's last instance carries, when that drive may have
   * been built on another host (migrated): built again with this instance-id, the drive
   * keeps it, so equal settings still give equal bytes and the guest's report still
   * matches. Other instance-ids get a nonce from `reportKey`.
   */
  readonly knownNonce?: { readonly instanceId: string; readonly nonce: string };
}

/** Which instance a drive is: chosen by the agent's lineage (src/payload/instance-lineage.ts). */
export interface DriveIdentity {
  readonly instanceId: string;
  /**
   * The first instance the domain's guest gets from the agent: host keys are left to
   * cloud-init's default (regenerated, so clones of one template do not share them);
   * on later instances they are kept unless the request asks.
   */
  readonly firstInstance: boolean;
}

/** A config drive's files: path relative to the drive root (`openstack/latest/...`) to bytes. */
export type DriveTree = ReadonlyMap<string, Uint8Array>;

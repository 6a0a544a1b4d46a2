/**
 * What the translators need to know about the domain, and what they produce.
 */

/** Facts read from the libvirt domain (or given on the command line for offline builds). */
export interface DomainFacts {
  /** The domain UUID, which QEMU exposes as SMBIOS system-uuid: the default instance-id. */
  readonly uuid: string;
  /** The domain name, for meta_data.json `name` when no host name is set. */
  readonly name?: string;
  /** The domain's NICs in definition order; the Nth is what a request calls `eth<N>`. */
  readonly nics: readonly { readonly mac: string }[];
}

/** A config drive's files: path relative to the drive root (`openstack/latest/...`) to bytes. */
export type DriveTree = ReadonlyMap<string, Uint8Array>;

/**
 * SSH host keys on a new instance. cloud-init's default (`ssh_deletekeys: true`) deletes
 * and regenerates them, which a domain's first instance needs: VMs cloned from one
 * template would otherwise share its keys. A re-initialization of the same guest keeps
 * them (its users' known_hosts stay valid) unless the request asks for new ones, and an
 * explicit `regenerate_ssh_keys: false` keeps them always.
 *
 * The key types are named either way: cloud-init creates every missing type of its
 * default list, which includes DSA up to 22.4, so a kept set would gain a DSA key (seen
 * on a Debian 12 guest at its second instance).
 */
import type { Initialization } from '../initialization/types.js';
import type { DriveIdentity } from './types.js';
import type { CloudConfig } from './yaml.js';

export const HOST_KEY_TYPES = ['rsa', 'ecdsa', 'ed25519'] as const;

export function sshConfig(init: Initialization, identity: DriveIdentity): CloudConfig {
  const regenerate = init.regenerateSshKeys ?? identity.firstInstance;
  return { ssh_deletekeys: regenerate, ssh_genkeytypes: [...HOST_KEY_TYPES] };
}

/**
 * SSH host keys on a new instance. cloud-init's default (`ssh_deletekeys: true`) deletes
 * and regenerates them, which a domain's first instance needs: VMs cloned from one
 * template would otherwise share its keys. A re-initialization of the same guest keeps
 * them (its users' known_hosts stay valid) unless the request asks for new ones, and an
 * explicit `regenerate_ssh_keys: false` keeps them always.
 */
import type { Initialization } from '../initialization/types.js';
import type { DriveIdentity } from './types.js';
import type { CloudConfig } from './yaml.js';

export const HOST_KEY_TYPES = ['rsa', 'ecdsa', 'ed25519'] as const;

export function sshConfig(init: Initialization, identity: DriveIdentity): CloudConfig {
  const regenerate = init.regenerateSshKeys ?? identity.firstInstance;
  return regenerate ? { ssh_deletekeys: true, ssh_genkeytypes: [...HOST_KEY_TYPES] } : { ssh_deletekeys: false };
}

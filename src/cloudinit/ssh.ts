/**
 * SSH host keys. cloud-init's default (`ssh_deletekeys: true`) deletes and regenerates
 * the host keys on every new instance, which would change a VM's identity whenever a
 * new instance-id is used; we delete them only when the request asks to regenerate.
 */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

export const HOST_KEY_TYPES = ['rsa', 'ecdsa', 'ed25519'] as const;

export function sshConfig(init: Initialization): CloudConfig {
  return init.regenerateSshKeys ? { ssh_deletekeys: true, ssh_genkeytypes: [...HOST_KEY_TYPES] } : { ssh_deletekeys: false };
}

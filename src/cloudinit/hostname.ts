/**
 * Host name: cloud-init sets it from user-data `hostname`/`fqdn` and, with
 * `preserve_hostname: false`, keeps it on later boots instead of reverting to the image's.
 */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

/** The name the guest should answer to: `host.domain` when both are set, else the host name. */
export function fullHostName(init: Initialization): string | undefined {
  if (init.hostName === undefined) return undefined;
  return init.domain === undefined ? init.hostName : `${init.hostName}.${init.domain}`;
}

export function hostnameConfig(init: Initialization): CloudConfig {
  if (init.hostName === undefined) return {};
  const fqdn = fullHostName(init);
  return {
    preserve_hostname: false,
    hostname: init.hostName,
    ...(init.domain === undefined ? {} : { fqdn: fqdn ?? init.hostName }),
    // `localhost` only maintains the 127.0.1.1 line of the image's /etc/hosts, so
    // `hostname -f` resolves without replacing a hosts file the user manages.
    manage_etc_hosts: 'localhost',
  };
}

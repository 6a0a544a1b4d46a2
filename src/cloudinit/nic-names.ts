/**
 * Guest NIC names that outlive cloud-init (issue 17). cloud-init renames each NIC the
 * network file names (matched by MAC) to that name, but only on boots it runs. Whether
 * the name survives a boot without it (a detached drive, Run Once, where ds-identify
 * disables cloud-init) depends on the renderer: ENI leaves udev's
 * 70-persistent-net.rules and netplan its generator's .link files, but networkd and
 * NetworkManager leave nothing, so the NIC comes back under its predictable name and
 * what was configured for `eth0` no longer finds it (networkd's unit matches
 * `Name=eth0`: no address at all). So the drive writes, for each NIC with a known MAC, a
 * systemd .link file that udev applies on every boot, with or without cloud-init, on
 * every renderer. It sorts before the distribution's 99-default.link and netplan's
 * 10-netplan-*.link, and names the NIC just as cloud-init does.
 */
import type { ResolvedNic } from './nics.js';
import type { CloudConfig } from './yaml.js';

/** Where the .link file of the NIC named `name` goes in the guest. */
export const nicLinkPath = (name: string) => `/etc/systemd/network/10-configdrive-${name}.link`;

export function nicNamesConfig(nics: readonly ResolvedNic[]): CloudConfig {
  const named = nics.filter((n): n is ResolvedNic & { mac: string } => n.mac !== undefined);
  if (named.length === 0) return {};
  return {
    write_files: named.map(({ nic, mac }) => ({
      path: nicLinkPath(nic.name),
      content: `[Match]\nMACAddress=${mac}\n\n[Link]\nName=${nic.name}\n`,
      permissions: '0644',
    })),
  };
}

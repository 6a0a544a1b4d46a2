/**
 * The datasource pin, written into the guest by the drive's own user data. Two entries,
 * neither of them None, so that ds-identify (the systemd generator that decides whether
 * cloud-init runs at all) really checks each boot for a `config-2` filesystem:
 *
 *  - drive present: found, cloud-init runs, reads it; an unchanged instance-id re-runs
 *    nothing (R2), a new one is a full re-initialization (R4);
 *  - drive absent: nothing found, policy `notfound=disabled`: cloud-init does not run
 *    that boot, so nothing is destroyed (R3). A lone entry, or one entry plus None, is
 *    taken as "found" without checking; cloud-init would then fall to DataSourceNone
 *    (a new instance `iid-datasource-none`: host keys replaced, the distribution's
 *    default user created, the static network replaced by the DHCP fallback).
 *
 * NoCloud is the second entry because it is present in every image and reads nothing
 * unless a `cidata` disk or a seed directory exists. The line is in flow style on one
 * line: ds-identify does not parse YAML, it takes the last `datasource_list: [ ... ]`
 * line of /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg, and `99-` sorts last.
 * Research and guest evidence: ../shared/research/instance-id-2026-12.md, docs/lifecycle.md.
 */
import type { CloudConfig } from './yaml.js';

export const DATASOURCE_PIN_PATH = '/etc/cloud/cloud.cfg.d/99-configdrive-agent.cfg';

export const DATASOURCE_PIN_CONTENT =
  '# Written by configdrive-agent: run cloud-init only on boots that have a config drive.\n' +
  'datasource_list: [ ConfigDrive, NoCloud ]\n';

export function datasourcePinConfig(): CloudConfig {
  return {
    write_files: [{ path: DATASOURCE_PIN_PATH, content: DATASOURCE_PIN_CONTENT, owner: 'root:root', permissions: '0644' }],
  };
}

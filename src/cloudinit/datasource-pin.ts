/**
 * The datasource pin. Without it, a later boot without the drive makes cloud-init probe
 * every datasource of the image's list (network metadata services time out slowly).
 * Pinning to ConfigDrive, then None, lets it settle at once on the cached instance.
 *
 * The line is written in flow style on one line on purpose: ds-identify (which runs
 * before cloud-init on systemd images) does not parse YAML; it reads the last
 * `datasource_list: [ ... ]` line it finds in /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg,
 * and `99-` sorts after the image's own files.
 */
import type { CloudConfig } from './yaml.js';

export const DATASOURCE_PIN_PATH = '/etc/cloud/cloud.cfg.d/99-configdrive-agent.cfg';

export const DATASOURCE_PIN_CONTENT =
  '# Written by configdrive-agent: after the first boot, look for the config drive only.\n' +
  'datasource_list: [ ConfigDrive, None ]\n';

export function datasourcePinConfig(): CloudConfig {
  return {
    write_files: [{ path: DATASOURCE_PIN_PATH, content: DATASOURCE_PIN_CONTENT, owner: 'root:root', permissions: '0644' }],
  };
}

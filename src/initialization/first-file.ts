/**
 * oVirt's first file. oVirt engine (VmMapper, for the deprecated cloud_init element)
 * takes the first file's content as the custom script, whatever it holds, and drops the
 * other files; the seed's SDK example relies on it, with a cloud-config under the name
 * /etc/resolv.conf. Taken blindly that loses real files (`/etc/myapp/config.yaml` with
 * `port: 8080`), so here a first file is user data only when cloud-init itself would
 * take it as cloud-config, and written to the path it names otherwise.
 */
import { CLOUD_CONFIG_TYPE, typeFromStart } from '../cloudinit/user-data-types.js';
import { loadYaml11 } from '../cloudinit/yaml.js';
import { CLOUD_CONFIG_MODULE_KEYS } from './cloud-config-keys.js';

export interface FirstFileRole {
  readonly userData: boolean;
  /** A YAML mapping: text that may have been meant as cloud-config either way. */
  readonly mapping: boolean;
  readonly why: string;
}

/** cloud-init's own test for the part type (`#cloud-config-archive` and `-jsonp` are others). */
function cloudConfigHeader(content: string): boolean {
  return typeFromStart(content) === CLOUD_CONFIG_TYPE;
}

function topLevelKeys(content: string): string[] | undefined {
  try {
    const value = loadYaml11(content);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a first file's text is the user data, and why, in words for the caller's warning. */
export function firstFileRole(content: string): FirstFileRole {
  if (cloudConfigHeader(content)) return { userData: true, mapping: true, why: 'it starts with #cloud-config' };
  const keys = topLevelKeys(content);
  if (keys === undefined || keys.length === 0) return { userData: false, mapping: false, why: 'it is not a YAML mapping' };
  const foreign = keys.filter((k) => !CLOUD_CONFIG_MODULE_KEYS.has(k));
  if (foreign.length === 0) return { userData: true, mapping: true, why: `every top-level key (${shown(keys)}) is a cloud-init module's` };
  return { userData: false, mapping: true, why: `${shown(foreign)} ${foreign.length === 1 ? 'is no' : 'are no'} cloud-init module's key` };
}

function shown(keys: readonly string[]): string {
  const listed = keys.slice(0, 5).map((k) => JSON.stringify(k.length > 40 ? `${k.slice(0, 37)}...` : k));
  return keys.length > 5 ? `${listed.join(', ')} and ${String(keys.length - 5)} more` : listed.join(', ');
}

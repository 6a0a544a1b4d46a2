/**
 * An Ignition config as the custom script: what oVirt engine sends for CoreOS guests
 * (IgnitionHandler: "the ignition payload goes into the user_data as-is"). oVirt picks
 * Ignition by the VM's OS type, which the agent is not told, so the config is known by
 * what Ignition itself requires of one: a JSON object whose `ignition.version` is a
 * string. It becomes openstack/latest/user_data unchanged, byte for byte; cloud-init,
 * should such a guest run it, types it text/x-not-multipart and only logs that it has
 * no handler for it.
 *
 * Beside it the drive still carries meta_data.json (host name, root's keys) and
 * network_data.json, which a CoreOS guest's metadata agent (Afterburn) reads from a
 * config-2 drive. Everything the agent would otherwise write as cloud-config cannot go
 * next to an Ignition config, and is refused by name rather than dropped. Unlike oVirt,
 * the agent does not edit the config (oVirt adds its version, host name and user into
 * the JSON): the host name is in meta_data.json, and a user belongs in the config's own
 * passwd.users.
 */
import type { Problem } from '../errors.js';
import type { Initialization } from '../initialization/types.js';

export type IgnitionCheck =
  | { readonly kind: 'not-ignition' }
  | { readonly kind: 'ignition'; readonly version: string }
  | { readonly kind: 'invalid'; readonly message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function detectIgnition(text: string): IgnitionCheck {
  if (!text.trimStart().startsWith('{')) return { kind: 'not-ignition' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: a flow-style YAML mapping is a cloud-config fragment.
    return { kind: 'not-ignition' };
  }
  if (!isObject(parsed) || !('ignition' in parsed)) return { kind: 'not-ignition' };
  const ignition = parsed['ignition'];
  if (!isObject(ignition) || typeof ignition['version'] !== 'string' || ignition['version'] === '') {
    return { kind: 'invalid', message: 'is JSON with an "ignition" key but no ignition.version string: Ignition refuses a config without its version (e.g. "ignition": {"version": "3.4.0"})' };
  }
  return { kind: 'ignition', version: ignition['version'] };
}

const BESIDE = 'cannot go next to an Ignition config given as custom_script (the agent writes it as cloud-config, which replaces nothing in an Ignition guest)';

/** One problem per setting the agent would have to write as cloud-config. */
export function ignitionProblems(init: Initialization): Problem[] {
  const problems: Problem[] = [];
  init.users.forEach((user, i) => {
    const at = `users[${String(i)}]`;
    if (user.name !== 'root') problems.push({ path: at, message: `(${user.name}) ${BESIDE}; put the user in the config's passwd.users` });
    else if (user.password !== undefined) problems.push({ path: `${at}.password`, message: `${BESIDE}; set passwd.users[].passwordHash in the config` });
  });
  const single: readonly (readonly [string, boolean, string])[] = [
    ['timezone', init.timezone !== undefined, 'write /etc/localtime with the config\'s storage.links'],
    ['locale', init.systemLocale !== undefined, 'write /etc/locale.conf with the config\'s storage.files'],
    ['files', init.files.length > 0, 'use the config\'s storage.files'],
    ['runcmd', init.commands.length > 0, 'use a oneshot unit in the config\'s systemd.units'],
    ['power_state', init.powerState !== undefined, 'use a unit in the config\'s systemd.units'],
    ['regenerate_ssh_keys', init.regenerateSshKeys !== undefined, 'an Ignition guest makes its host keys on its first boot'],
  ];
  for (const [path, set, instead] of single) if (set) problems.push({ path, message: `${BESIDE}; ${instead}` });
  return problems;
}

/**
 * Users, passwords and authorized keys, in the one form cloud-init 20.4 to 26.x all apply
 * the same way without a deprecation (test/cloudinit/generations.test.ts reads each):
 *
 * - A password, root's included, is `users[].hashed_passwd` with `lock_passwd: false`.
 *   Every release's distro.create_user sets it with `chpasswd -e` also for an existing
 *   account (only useradd is skipped for one). `chpasswd.users` is unknown to 20.4 (it
 *   reads `chpasswd.list` only, which 22.3 and later report as DEPRECATED), so it is not
 *   used. `lock_passwd: false` is needed: without it every release runs `passwd -l`
 *   after setting the password. 24.3 and later (#5355) then run `passwd -u` on it,
 *   which on the crypt hash just set changes nothing (shadow's passwd only strips a
 *   leading `!`).
 * - root without a password is not listed under `users:` at all: any entry makes
 *   create_user lock it (`lock_passwd` true, the default) or, from 24.3 on, unlock it
 *   (`passwd -u`, which turns an administrator's `!$6$...` back into a usable password;
 *   on a bare `!` it logs a WARNING). Its keys go through meta_data `public_keys`, which
 *   cloud-init installs for root when `disable_root` is false.
 * - cloud-init creates the distro's default user (e.g. `debian`) unless user-data sets
 *   `users` without the `default` entry. With nobody to list, `users: [[]]` (a list
 *   holding one empty list of names) names nobody on every release: 22.4's schema
 *   rejects `users: []` as too short, and 22.2 and later log a deprecation for the
 *   mapping and string forms.
 */
import { parseAuthorizedKey } from '../authorized-keys.js';
import type { Problem } from '../errors.js';
import type { Initialization, User } from '../initialization/types.js';
import { passwordHash } from './passwords.js';
import type { CloudConfig, YamlValue } from './yaml.js';

export interface UsersFragment {
  readonly config: CloudConfig;
  /** root's keys, for meta_data.json `public_keys`. */
  readonly rootKeys: readonly string[];
  readonly problems: readonly Problem[];
}

const PASSWORDLESS_SUDO = 'ALL=(ALL) NOPASSWD:ALL';

/** `users:` creating and touching nobody, not even the distro's default user (see above). */
export const NO_USERS: YamlValue = [[]];

function userEntry(user: User, hash: string | undefined): YamlValue {
  return {
    name: user.name,
    ...(user.groups.length === 0 ? {} : { groups: [...user.groups] }),
    ...(user.sudo ? { sudo: PASSWORDLESS_SUDO } : {}),
    ...(hash === undefined ? {} : { hashed_passwd: hash, lock_passwd: false }),
    ...(user.authorizedKeys.length === 0 ? {} : { ssh_authorized_keys: [...user.authorizedKeys] }),
  };
}

export function usersConfig(init: Initialization, instanceId: string): UsersFragment {
  const problems: Problem[] = [];
  const entries: YamlValue[] = [];
  let rootKeys: readonly string[] = [];
  let anyPassword = false;
  let rootPassword = false;

  init.users.forEach((user, i) => {
    // The line goes on the drive as written, options and all; cloud-init's parser and
    // sshd must both take it (test/cloudinit reads each with every release's parser).
    user.authorizedKeys.forEach((key, j) => {
      const checked = parseAuthorizedKey(key);
      if (!checked.ok) problems.push({ path: `users[${String(i)}].ssh_authorized_keys[${String(j)}]`, message: checked.message });
    });
    let hash: string | undefined;
    if (user.password !== undefined) {
      const result = passwordHash(user.password, instanceId, user.name, `users[${String(i)}].password`);
      if ('problem' in result) problems.push(result.problem);
      else hash = result.hash;
      anyPassword = true;
    }
    if (user.name === 'root') {
      rootKeys = user.authorizedKeys;
      if (hash !== undefined) {
        rootPassword = true;
        // The password only: root exists, so useradd's settings would not apply, and its
        // keys travel in meta_data (above).
        entries.push({ name: 'root', hashed_passwd: hash, lock_passwd: false });
      }
    } else {
      entries.push(userEntry(user, hash));
    }
  });

  const rootAccess = rootPassword || rootKeys.length > 0;

  const config: CloudConfig = {
    users: entries.length === 0 ? NO_USERS : entries,
    ...(rootAccess ? { disable_root: false } : {}),
    ...(anyPassword ? { ssh_pwauth: true } : {}),
  };
  return { config, rootKeys, problems };
}

/**
 * Users, passwords and authorized keys.
 *
 * - root is never listed under `users:` (cloud-init would run its user creation on an
 *   existing account and lock its password). Its password goes through
 *   `chpasswd.users` with `type: hash`; its keys through meta_data `public_keys`, which
 *   cloud-init installs for root when `disable_root` is false.
 * - Every other user is an explicit `users:` entry with `hashed_passwd`.
 * - cloud-init creates the distro's default user (e.g. `debian`) unless user-data sets
 *   `users` without the `default` entry. With no other users the list holds root alone,
 *   with `lock_passwd: false` so that cloud-init (which skips creating an existing user)
 *   leaves root's password as it is: 22.4's schema rejects an empty list as "too short",
 *   and it logs a deprecation for the mapping and string forms (seen on a real guest).
 */
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

/** `users:` creating nobody, not even the distro's default user (see above). */
export const NO_USERS: YamlValue = [{ name: 'root', lock_passwd: false }];

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
  let rootHash: string | undefined;
  let rootKeys: readonly string[] = [];
  let anyPassword = false;

  init.users.forEach((user, i) => {
    let hash: string | undefined;
    if (user.password !== undefined) {
      const result = passwordHash(user.password, instanceId, user.name, `users[${String(i)}].password`);
      if ('problem' in result) problems.push(result.problem);
      else hash = result.hash;
      anyPassword = true;
    }
    if (user.name === 'root') {
      rootHash = hash;
      rootKeys = user.authorizedKeys;
    } else {
      entries.push(userEntry(user, hash));
    }
  });

  const rootAccess = rootHash !== undefined || rootKeys.length > 0;
  const config: CloudConfig = {
    users: entries.length === 0 ? NO_USERS : entries,
    ...(rootAccess ? { disable_root: false } : {}),
    ...(rootHash === undefined ? {} : { chpasswd: { expire: false, users: [{ name: 'root', password: rootHash, type: 'hash' }] } }),
    ...(anyPassword ? { ssh_pwauth: true } : {}),
  };
  return { config, rootKeys, problems };
}

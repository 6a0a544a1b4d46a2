/**
 * openstack/latest/user_data: the per-topic fragments merged into one cloud-config,
 * then the custom script merged in or attached (custom-script.ts).
 */
import { AgentError, type Problem } from '../errors.js';
import type { Initialization } from '../initialization/types.js';
import { commandsConfig } from './commands.js';
import { classifyCustomScript, mergeCustomConfig, multipartUserData } from './custom-script.js';
import { datasourcePinConfig } from './datasource-pin.js';
import { filesConfig } from './files.js';
import { hostnameConfig } from './hostname.js';
import { localeConfig } from './locale.js';
import { mergeConfigs } from './merge.js';
import { nicNamesConfig } from './nic-names.js';
import type { ResolvedNic } from './nics.js';
import { powerStateConfig } from './power-state.js';
import { sshConfig } from './ssh.js';
import { timezoneConfig } from './timezone.js';
import type { DriveIdentity } from './types.js';
import { usersConfig } from './users.js';
import { dumpCloudConfig, type CloudConfig } from './yaml.js';

export interface UserData {
  readonly text: string;
  /** root's authorized keys, which go to meta_data.json. */
  readonly rootKeys: readonly string[];
  readonly problems: readonly Problem[];
  /** The top-level keys of the caller's own cloud-config (a custom script that is one). */
  readonly callerKeys: readonly string[];
}

/** Generated fragments never share a scalar key; a conflict here is our bug. */
function combine(fragments: readonly CloudConfig[]): CloudConfig {
  let config: CloudConfig = {};
  for (const fragment of fragments) {
    const merged = mergeConfigs(config, fragment);
    if (merged.conflicts.length > 0) {
      throw new AgentError('INTERNAL', `generated cloud-config fragments disagree on ${merged.conflicts.map((c) => c.path).join(', ')}`);
    }
    config = merged.config;
  }
  return config;
}

export function buildUserData(init: Initialization, identity: DriveIdentity, nics: readonly ResolvedNic[] = []): UserData {
  const users = usersConfig(init, identity.instanceId);
  const generated = combine([
    hostnameConfig(init),
    users.config,
    sshConfig(init, identity),
    timezoneConfig(init),
    localeConfig(init),
    filesConfig(init),
    nicNamesConfig(nics),
    datasourcePinConfig(),
    commandsConfig(init),
    powerStateConfig(init),
  ]);
  const problems: Problem[] = [...users.problems];
  const custom = classifyCustomScript(init.customScript);
  switch (custom.kind) {
    case 'none':
      return { text: dumpCloudConfig(generated), rootKeys: users.rootKeys, problems, callerKeys: [] };
    case 'cloud-config': {
      const merged = mergeCustomConfig(generated, custom.config);
      problems.push(...merged.problems);
      return { text: dumpCloudConfig(merged.config), rootKeys: users.rootKeys, problems, callerKeys: Object.keys(custom.config) };
    }
    case 'script':
      return { text: multipartUserData(dumpCloudConfig(generated), custom.text), rootKeys: users.rootKeys, problems, callerKeys: [] };
    case 'invalid':
      problems.push(custom.problem);
      return { text: '', rootKeys: users.rootKeys, problems, callerKeys: [] };
    default: {
      const never: never = custom;
      return never;
    }
  }
}

/**
 * openstack/latest/user_data: the per-topic fragments merged into one cloud-config,
 * then the custom script merged in, kept as parts beside it, or, for an Ignition
 * config, in its place (custom-script.ts).
 */
import { AgentError, type Problem } from '../errors.js';
import type { Initialization } from '../initialization/types.js';
import { commandsConfig } from './commands.js';
import { classifyCustomScript, mergeCustomConfig } from './custom-script.js';
import { datasourcePinConfig } from './datasource-pin.js';
import { filesConfig } from './files.js';
import { hostnameConfig } from './hostname.js';
import { ignitionProblems } from './ignition.js';
import { localeConfig } from './locale.js';
import { mergeConfigs } from './merge.js';
import { multipartUserData } from './multipart.js';
import { nicNamesConfig } from './nic-names.js';
import type { ResolvedNic } from './nics.js';
import { powerStateConfig } from './power-state.js';
import { sshConfig } from './ssh.js';
import { timezoneConfig } from './timezone.js';
import type { KeptParts } from './user-parts.js';
import type { DriveIdentity } from './types.js';
import { usersConfig } from './users.js';
import { dumpCloudConfig, type CloudConfig } from './yaml.js';

export interface UserData {
  readonly text: string;
  /** root's authorized keys, which go to meta_data.json. */
  readonly rootKeys: readonly string[];
  readonly problems: readonly Problem[];
  /** The top-level keys of the caller's own cloud-config, as far as they can be known before the guest renders it. */
  readonly callerKeys: readonly string[];
  readonly warnings: readonly string[];
  /** The user data is an Ignition config: the guest runs Ignition, not cloud-init. */
  readonly ignition: boolean;
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

function show(v: unknown): string {
  return JSON.stringify(v);
}

/**
 * The caller's readable cloud-config parts against the agent's settings and each other,
 * merged in order as cloud-init will merge them: a scalar set twice differently would
 * keep the first value in the guest (AGENT_MERGE_TYPE), so it is refused here, naming
 * who set it first.
 */
function partConflicts(generated: CloudConfig, parts: KeptParts): Problem[] {
  const problems: Problem[] = [];
  let sofar = generated;
  for (const { where, config } of parts.configs) {
    const agent = new Set(mergeConfigs(generated, config).conflicts.map((c) => c.path));
    const merged = mergeConfigs(sofar, config);
    for (const c of merged.conflicts) {
      const first = agent.has(c.path) ? "the request's own settings" : 'an earlier MIME part';
      problems.push({ path: 'custom_script', message: `${where} sets ${c.path} to ${show(c.theirs)}, which conflicts with ${show(c.ours)} set by ${first}` });
    }
    sofar = merged.config;
  }
  return problems;
}

function ignitionWarning(version: string): string {
  return `custom_script is an Ignition config (version ${version}): it is the drive's user_data, unchanged, and meta_data.json and network_data.json carry the host name, root's keys and the network beside it; a guest that runs cloud-init rather than Ignition only logs that it has no handler for it`;
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
  const base = { rootKeys: users.rootKeys, problems, ignition: false };
  switch (custom.kind) {
    case 'none':
      return { ...base, text: dumpCloudConfig(generated), callerKeys: [], warnings: [] };
    case 'cloud-config': {
      const merged = mergeCustomConfig(generated, custom.config);
      problems.push(...merged.problems);
      return { ...base, text: dumpCloudConfig(merged.config), callerKeys: Object.keys(custom.config), warnings: [] };
    }
    case 'ignition':
      problems.push(...ignitionProblems(init));
      return { ...base, ignition: true, text: custom.text, callerKeys: [], warnings: [ignitionWarning(custom.version)] };
    case 'parts':
      problems.push(...partConflicts(generated, custom.parts));
      return {
        ...base,
        text: multipartUserData(dumpCloudConfig(generated), custom.parts.entities),
        callerKeys: custom.parts.callerKeys,
        warnings: custom.parts.warnings,
      };
    case 'invalid':
      problems.push(...custom.problems);
      return { ...base, text: '', callerKeys: [], warnings: [] };
    default: {
      const never: never = custom;
      return never;
    }
  }
}

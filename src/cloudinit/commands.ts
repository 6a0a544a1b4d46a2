/** Commands run once, at the end of the first boot (cc_runcmd runs each through sh). */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

export function commandsConfig(init: Initialization): CloudConfig {
  return init.commands.length === 0 ? {} : { runcmd: [...init.commands] };
}

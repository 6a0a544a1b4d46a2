/** Power off, reboot or halt after cloud-init finished (cc_power_state_change). */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

export function powerStateConfig(init: Initialization): CloudConfig {
  const p = init.powerState;
  if (p === undefined) return {};
  // cloud-init passes delay to shutdown(8): "now" or "+minutes".
  const delay = p.delayMinutes === 0 ? 'now' : `+${String(p.delayMinutes)}`;
  return { power_state: { mode: p.mode, delay, ...(p.message === undefined ? {} : { message: p.message }) } };
}

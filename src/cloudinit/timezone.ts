/** Time zone (cc_timezone); the value is an IANA zone name, checked by the parser. */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

export function timezoneConfig(init: Initialization): CloudConfig {
  return init.timezone === undefined ? {} : { timezone: init.timezone };
}

/** System locale (cc_locale), e.g. `en_US.UTF-8`. */
import type { Initialization } from '../initialization/types.js';
import type { CloudConfig } from './yaml.js';

export function localeConfig(init: Initialization): CloudConfig {
  return init.systemLocale === undefined ? {} : { locale: init.systemLocale };
}

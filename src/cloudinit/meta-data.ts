/**
 * openstack/latest/meta_data.json, the one file cloud-init requires. `uuid` becomes the
 * instance-id; `hostname` the local-hostname; `public_keys` are installed for the
 * default user (we create none) and for root.
 */
import type { Initialization } from '../initialization/types.js';
import { ENI_CONTENT_PATH } from './eni.js';
import { fullHostName } from './hostname.js';
import type { DomainFacts } from './types.js';

export interface MetaDataInput {
  readonly instanceId: string;
  readonly rootKeys: readonly string[];
  /** True when the legacy ENI file is written. */
  readonly eni: boolean;
}

export function buildMetaData(init: Initialization, facts: DomainFacts, input: MetaDataInput): string {
  const hostname = fullHostName(init);
  const name = init.hostName ?? facts.name ?? input.instanceId;
  const document = {
    uuid: input.instanceId,
    ...(hostname === undefined ? {} : { hostname }),
    name,
    // A name -> key mapping, as Nova writes it; cloud-init takes the values.
    public_keys: Object.fromEntries(input.rootKeys.map((key, i) => [`root-${String(i)}`, key])),
    ...(input.eni ? { network_config: { content_path: ENI_CONTENT_PATH } } : {}),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

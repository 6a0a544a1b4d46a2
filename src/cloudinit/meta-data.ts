/**
 * The drive's metadata. config-2: openstack/latest/meta_data.json, the one file
 * cloud-init requires. `uuid` becomes the instance-id; `hostname` the local-hostname;
 * `public_keys` are installed for the default user (we create none) and for root.
 */
import type { Initialization } from '../initialization/types.js';
import { ENI_CONTENT_PATH } from './eni.js';
import { fullHostName } from './hostname.js';
import type { DomainFacts } from './types.js';
import { dumpYamlDocument } from './yaml.js';

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

export interface NoCloudMetaDataInput {
  readonly instanceId: string;
  readonly rootKeys: readonly string[];
  /** The legacy ENI text, for the ENI protocol: NoCloud reads it from `network-interfaces`. */
  readonly eni?: string;
}

/**
 * NoCloud's `meta-data` (YAML): `instance-id`, `local-hostname`, and root's keys as
 * `public-keys`, which every DataSource hands to cc_ssh as ConfigDrive's `public_keys`
 * are. With the ENI protocol the interfaces text goes in `network-interfaces`, which
 * NoCloud converts (eni.convert_eni_data) when there is no network-config file.
 */
export function buildNoCloudMetaData(init: Initialization, input: NoCloudMetaDataInput): string {
  const hostname = fullHostName(init);
  return dumpYamlDocument({
    'instance-id': input.instanceId,
    ...(hostname === undefined ? {} : { 'local-hostname': hostname }),
    ...(input.rootKeys.length === 0 ? {} : { 'public-keys': [...input.rootKeys] }),
    ...(input.eni === undefined ? {} : { 'network-interfaces': input.eni }),
  });
}

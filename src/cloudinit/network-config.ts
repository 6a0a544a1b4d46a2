/**
 * NoCloud's `network-config`: the drive's network model (network-model.ts) as network
 * config version 1, the form every cloud-init from 20.4 to 26.x reads natively. Version 2
 * is not used: cloud-init turns a v2 ethernet into subnets of three kinds only (dhcp4,
 * dhcp6, static: `_v2_to_v1_ipcfg` in net/network_state.py, unchanged from 20.4 to 26.2),
 * so SLAAC and DHCPv6-stateless would reach the eni, sysconfig, networkd and
 * network-manager renderers as nothing at all, and v2 has no global DNS. Version 1 is
 * what cloud-init itself makes of a config-2 drive's network_data.json
 * (convert_net_json), so the renderers get the same input from both formats and the DNS
 * warnings of dns-renderers.ts hold for both:
 *  - `physical` entries with `name` and `mac_address`: cloud-init matches by MAC and
 *    renames the interface to the requested name, as for config-2;
 *  - static addresses in CIDR form, the gateway on its subnet (the default route);
 *  - DNS on the subnet the model says, and once globally in a `nameserver` entry.
 * Strings are quoted by the dumper, so no value can re-type or restructure the document.
 */
import { isStatic, type Link, type NetworkModel, type Subnet } from './network-model.js';
import { dumpYamlDocument, type YamlValue } from './yaml.js';

export const NETWORK_CONFIG_VERSION = 1;

const DYNAMIC_TYPES = { dhcp4: 'dhcp4', dhcp6: 'dhcp6', slaac: 'ipv6_slaac', 'dhcpv6-stateless': 'ipv6_dhcpv6-stateless' } as const;

function subnet(s: Subnet, dns: NetworkModel['dns'] | undefined): YamlValue {
  const base: Record<string, YamlValue> = isStatic(s)
    ? { type: s.type === 'static4' ? 'static' : 'static6', address: `${s.address}/${String(s.prefix)}`, ...(s.gateway === undefined ? {} : { gateway: s.gateway }) }
    : { type: DYNAMIC_TYPES[s.type] };
  if (dns === undefined) return base;
  return {
    ...base,
    ...(dns.servers.length === 0 ? {} : { dns_nameservers: [...dns.servers] }),
    ...(dns.search.length === 0 ? {} : { dns_search: [...dns.search] }),
  };
}

function physical(link: Link, dns: NetworkModel['dns']): YamlValue {
  return {
    type: 'physical',
    name: link.name,
    ...(link.mac === undefined ? {} : { mac_address: link.mac }),
    subnets: link.subnets.map((s, i) => subnet(s, i === link.dnsSubnet ? dns : undefined)),
  };
}

export function renderNetworkConfig(model: NetworkModel): string {
  const { dns } = model;
  const global = dns.servers.length === 0 && dns.search.length === 0 ? [] : [{ type: 'nameserver', address: [...dns.servers], ...(dns.search.length === 0 ? {} : { search: [...dns.search] }) }];
  return dumpYamlDocument({ version: NETWORK_CONFIG_VERSION, config: [...model.links.map((l) => physical(l, dns)), ...global] });
}

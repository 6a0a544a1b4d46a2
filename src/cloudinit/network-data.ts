/**
 * openstack/latest/network_data.json, the OpenStack network format cloud-init converts
 * with convert_net_json, rendered from the drive's network model (network-model.ts,
 * which decides what is configured and where DNS goes). Choices of this syntax
 * (docs/cloudinit.md explains each):
 *  - one `phy` link per NIC, `id` and `name` = the requested name, with the MAC;
 *  - DNS on a network as `dns_nameservers`/`dns_search` (read by cloud-init 22.4) and
 *    network `services` (read by later versions, replacing dns_nameservers, so nothing
 *    is doubled), and as top-level `services`;
 *  - the search domains also go in a top-level `services` entry of their own,
 *    `{type: dns, address: [], search: [...]}`: convert_net_json copies each top-level
 *    service whole into a v1 `nameserver` entry, which is where the global search list
 *    lives. Without it a DHCP-only NIC lost its search domains in sysconfig (20.4,
 *    22.4) and networkd (22.4 and later), which read only global search or the static
 *    subnets'. The empty address list keeps the servers listed once; the v1 handler
 *    requires the key (a missing one fails the whole network config).
 */
import type { Initialization } from '../initialization/types.js';
import { isStatic, type NetworkModel, type Subnet } from './network-model.js';

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
type Network = { readonly [key: string]: Json };

/** 24 -> "255.255.255.0". */
export function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => String((bits >>> shift) & 0xff)).join('.');
}

const DYNAMIC_TYPES = { dhcp4: 'ipv4_dhcp', dhcp6: 'ipv6_dhcp', slaac: 'ipv6_slaac', 'dhcpv6-stateless': 'ipv6_dhcpv6-stateless' } as const;

function network(link: string, subnet: Subnet): Network {
  const v6 = subnet.type === 'static6' || subnet.type === 'dhcp6' || subnet.type === 'slaac' || subnet.type === 'dhcpv6-stateless';
  const id = `${link}-${v6 ? 'ipv6' : 'ipv4'}`;
  if (!isStatic(subnet)) return { id, link, type: DYNAMIC_TYPES[subnet.type] };
  return {
    id,
    link,
    type: v6 ? 'ipv6' : 'ipv4',
    ip_address: subnet.address,
    netmask: v6 ? String(subnet.prefix) : prefixToNetmask(subnet.prefix),
    ...(subnet.gateway === undefined ? {} : { gateway: subnet.gateway }),
  };
}

function dnsServices(servers: readonly string[]): Json[] {
  return servers.map((address) => ({ type: 'dns', address }));
}

function globalDnsServices(dns: Initialization['dns']): Json[] {
  return [...dnsServices(dns.servers), ...(dns.search.length === 0 ? [] : [{ type: 'dns', address: [], search: [...dns.search] }])];
}

function withDns(network: Network, dns: Initialization['dns']): Network {
  return {
    ...network,
    ...(dns.servers.length === 0 ? {} : { dns_nameservers: [...dns.servers] }),
    ...(dns.search.length === 0 ? {} : { dns_search: [...dns.search] }),
    ...(dns.servers.length === 0 ? {} : { services: dnsServices(dns.servers) }),
  };
}

export function renderNetworkData(model: NetworkModel): string {
  const links: Json[] = model.links.map((l) => ({ id: l.name, name: l.name, type: 'phy', ...(l.mac === undefined ? {} : { ethernet_mac_address: l.mac }) }));
  const networks = model.links.flatMap((l) => l.subnets.map((s, i) => (i === l.dnsSubnet ? withDns(network(l.name, s), model.dns) : network(l.name, s))));
  const document = { links, networks, services: globalDnsServices(model.dns) };
  return `${JSON.stringify(document, null, 2)}\n`;
}

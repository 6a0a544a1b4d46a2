/**
 * openstack/latest/network_data.json, the OpenStack network format cloud-init converts
 * with convert_net_json. Choices (docs/cloudinit.md explains each):
 *  - one `phy` link per NIC, `id` and `name` = the requested name, with the MAC;
 *  - a NIC with on_boot=false keeps its link (so it is still named) but gets no
 *    networks: the format has no "configured but not started" state;
 *  - DNS goes on the first network of each started NIC (its static one if any) as
 *    `dns_nameservers`/`dns_search` (read by cloud-init 22.4) and network `services`
 *    (read by later versions, replacing dns_nameservers, so nothing is doubled), and as
 *    top-level `services`. One network per NIC, because renderers concatenate the
 *    lists of all of an interface's subnets;
 *  - the search domains also go in a top-level `services` entry of their own,
 *    `{type: dns, address: [], search: [...]}`: convert_net_json copies each top-level
 *    service whole into a v1 `nameserver` entry, which is where the global search list
 *    lives. Without it a DHCP-only NIC lost its search domains in sysconfig (20.4,
 *    22.4) and networkd (22.4 and later), which read only global search or the static
 *    subnets'. The empty address list keeps the servers listed once; the v1 handler
 *    requires the key (a missing one fails the whole network config);
 *  - what a renderer still cannot write is a build warning (dns-renderers.ts);
 *  - no NIC, no file: a file without links replaces cloud-init's DHCP fallback by a
 *    configuration with no interface at all, leaving the guest offline.
 */
import type { Ipv4Config, Ipv6Config, NicConfiguration } from '../initialization/types.js';
import type { Initialization } from '../initialization/types.js';
import { dnsRendererWarnings } from './dns-renderers.js';
import type { ResolvedNic } from './nics.js';

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
type Network = { readonly [key: string]: Json };

export interface NetworkData {
  /** Absent when there is nothing to write. */
  readonly json?: string;
  readonly warnings: readonly string[];
}

/** 24 -> "255.255.255.0". */
export function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((shift) => String((bits >>> shift) & 0xff)).join('.');
}

function ipv4Network(link: string, ip: Ipv4Config): Network | undefined {
  switch (ip.boot) {
    case 'none':
      return undefined;
    case 'dhcp':
      return { id: `${link}-ipv4`, link, type: 'ipv4_dhcp' };
    case 'static':
      return {
        id: `${link}-ipv4`,
        link,
        type: 'ipv4',
        ip_address: ip.address,
        netmask: prefixToNetmask(ip.prefix),
        ...(ip.gateway === undefined ? {} : { gateway: ip.gateway }),
      };
  }
}

const IPV6_DYNAMIC_TYPES = {
  dhcp: 'ipv6_dhcp',
  autoconf: 'ipv6_slaac',
  'dhcp+autoconf': 'ipv6_dhcpv6-stateless',
} as const;

function ipv6Network(link: string, ip: Ipv6Config): Network | undefined {
  switch (ip.boot) {
    case 'none':
      return undefined;
    case 'static':
      return {
        id: `${link}-ipv6`,
        link,
        type: 'ipv6',
        ip_address: ip.address,
        netmask: String(ip.prefix),
        ...(ip.gateway === undefined ? {} : { gateway: ip.gateway }),
      };
    default:
      return { id: `${link}-ipv6`, link, type: IPV6_DYNAMIC_TYPES[ip.boot] };
  }
}

function hasAddressing(nic: NicConfiguration): boolean {
  return nic.ipv4.boot !== 'none' || nic.ipv6.boot !== 'none';
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

export function buildNetworkData(init: Initialization, nics: readonly ResolvedNic[]): NetworkData {
  const warnings: string[] = [];
  const hasDns = init.dns.servers.length > 0 || init.dns.search.length > 0;
  if (nics.length === 0) {
    if (hasDns) {
      warnings.push(
        'DNS servers/search domains are not written: without a NIC configuration there is no interface to carry them, ' +
          "and a network_data.json without links would replace cloud-init's DHCP fallback (the guest would boot offline)",
      );
    }
    return { warnings };
  }
  const links: Json[] = [];
  const networks: Network[] = [];
  for (const { nic, mac } of nics) {
    links.push({ id: nic.name, name: nic.name, type: 'phy', ...(mac === undefined ? {} : { ethernet_mac_address: mac }) });
    if (!nic.onBoot) {
      if (hasAddressing(nic)) {
        warnings.push(
          `nic ${nic.name}: on_boot is false, so its address settings are not applied (the interface is named but left unconfigured; ` +
            'use the ENI protocol to keep them for a manual ifup)',
        );
      }
      continue;
    }
    const own = [ipv4Network(nic.name, nic.ipv4), ipv6Network(nic.name, nic.ipv6)].filter((n): n is Network => n !== undefined);
    const dnsIndex = Math.max(0, own.findIndex((n) => n['type'] === 'ipv4' || n['type'] === 'ipv6'));
    own.forEach((n, i) => networks.push(hasDns && i === dnsIndex ? withDns(n, init.dns) : n));
  }
  warnings.push(...dnsRendererWarnings(init.dns, nics.map(({ nic }) => ({ onBoot: nic.onBoot, ipv4: nic.ipv4.boot, ipv6: nic.ipv6.boot })), 'openstack'));
  const document = { links, networks, services: globalDnsServices(init.dns) };
  return { json: `${JSON.stringify(document, null, 2)}\n`, warnings };
}

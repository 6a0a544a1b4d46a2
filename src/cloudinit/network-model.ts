/**
 * The network a drive asks for, decided once from the Initialization and the resolved
 * NICs, and rendered by each layout in its own syntax: network_data.json for config-2
 * (network-data.ts), network-config version 1 for NoCloud (network-config.ts). Every
 * choice about what is configured, and where DNS goes, is made here, so the two drive
 * formats cannot disagree about the guest's network:
 *  - one link per NIC, named as requested, with the MAC the NIC resolved to;
 *  - a NIC with on_boot=false keeps its link (so it is still named) but gets no
 *    subnets: neither format has a "configured but not started" state;
 *  - DNS goes on the first subnet of each started NIC (its static one if any), since
 *    renderers concatenate the lists of all of an interface's subnets, and is global
 *    as well (docs/cloudinit.md);
 *  - what a renderer still cannot write is a build warning (dns-renderers.ts), the same
 *    for both formats, because both reach cloud-init's renderers as the same model;
 *  - no NIC, no model: a network file without links replaces cloud-init's DHCP
 *    fallback by a configuration with no interface at all, leaving the guest offline.
 */
import type { Initialization, Ipv4Config, Ipv6Config, NicConfiguration } from '../initialization/types.js';
import { dnsRendererWarnings } from './dns-renderers.js';
import type { ResolvedNic } from './nics.js';

export type Subnet =
  | { readonly type: 'dhcp4' | 'dhcp6' | 'slaac' | 'dhcpv6-stateless' }
  | { readonly type: 'static4' | 'static6'; readonly address: string; readonly prefix: number; readonly gateway?: string };

export interface Link {
  readonly name: string;
  /** Absent only for an offline build without the domain's NICs (nics.ts warns). */
  readonly mac?: string;
  /** Empty for a NIC not started at boot. */
  readonly subnets: readonly Subnet[];
  /** Which of `subnets` carries the DNS settings; absent when there are none to carry. */
  readonly dnsSubnet?: number;
}

export interface NetworkModel {
  readonly links: readonly Link[];
  readonly dns: Initialization['dns'];
}

export interface NetworkPlan {
  /** Absent when there is nothing to write. */
  readonly model?: NetworkModel;
  readonly warnings: readonly string[];
}

function ipv4Subnet(ip: Ipv4Config): Subnet | undefined {
  switch (ip.boot) {
    case 'none':
      return undefined;
    case 'dhcp':
      return { type: 'dhcp4' };
    case 'static':
      return { type: 'static4', address: ip.address, prefix: ip.prefix, ...(ip.gateway === undefined ? {} : { gateway: ip.gateway }) };
  }
}

const IPV6_DYNAMIC = { dhcp: 'dhcp6', autoconf: 'slaac', 'dhcp+autoconf': 'dhcpv6-stateless' } as const;

function ipv6Subnet(ip: Ipv6Config): Subnet | undefined {
  switch (ip.boot) {
    case 'none':
      return undefined;
    case 'static':
      return { type: 'static6', address: ip.address, prefix: ip.prefix, ...(ip.gateway === undefined ? {} : { gateway: ip.gateway }) };
    default:
      return { type: IPV6_DYNAMIC[ip.boot] };
  }
}

function hasAddressing(nic: NicConfiguration): boolean {
  return nic.ipv4.boot !== 'none' || nic.ipv6.boot !== 'none';
}

export function isStatic(subnet: Subnet): subnet is Extract<Subnet, { address: string }> {
  return subnet.type === 'static4' || subnet.type === 'static6';
}

export function planNetwork(init: Initialization, nics: readonly ResolvedNic[]): NetworkPlan {
  const warnings: string[] = [];
  const hasDns = init.dns.servers.length > 0 || init.dns.search.length > 0;
  if (nics.length === 0) {
    if (hasDns) {
      warnings.push(
        'DNS servers/search domains are not written: without a NIC configuration there is no interface to carry them, ' +
          "and a network file without links would replace cloud-init's DHCP fallback (the guest would boot offline)",
      );
    }
    return { warnings };
  }
  const links = nics.map(({ nic, mac }): Link => {
    const named = { name: nic.name, ...(mac === undefined ? {} : { mac }) };
    if (!nic.onBoot) {
      if (hasAddressing(nic)) {
        warnings.push(
          `nic ${nic.name}: on_boot is false, so its address settings are not applied (the interface is named but left unconfigured; ` +
            'use the ENI protocol to keep them for a manual ifup)',
        );
      }
      return { ...named, subnets: [] };
    }
    const subnets = [ipv4Subnet(nic.ipv4), ipv6Subnet(nic.ipv6)].filter((s): s is Subnet => s !== undefined);
    const dnsSubnet = Math.max(0, subnets.findIndex(isStatic));
    return { ...named, subnets, ...(hasDns && subnets.length > 0 ? { dnsSubnet } : {}) };
  });
  warnings.push(...dnsRendererWarnings(init.dns, nics.map(({ nic }) => ({ onBoot: nic.onBoot, ipv4: nic.ipv4.boot, ipv6: nic.ipv6.boot })), 'openstack'));
  return { model: { links, dns: init.dns }, warnings };
}

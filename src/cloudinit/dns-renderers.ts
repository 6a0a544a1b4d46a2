/**
 * The DNS settings each renderer of cloud-init drops for a set of NICs, as build
 * warnings. cloud-init converts our network file to its own model and then one renderer,
 * chosen by the guest's image, writes it out; some renderers cannot write DNS where we
 * put it. The rules below are read from the renderers' code (cloudinit/net/*.py), with
 * the first release of each taken from the upstream commit's first tag, and they are
 * checked in both directions on 20.4, 22.4, 25.1 and 26.2 by
 * test/cloudinit/generations.test.ts: every setting a renderer drops must be named by a
 * warning for that renderer and release, and no warning may name a setting it writes.
 *
 * Warning form (the test parses it): `dns: cloud-init A and later, R renderer: ... not
 * written (why)`, or `cloud-init A to B` for a range that has ended.
 */
import type { Initialization, NicConfiguration } from '../initialization/types.js';

/**
 * Where our files put DNS. openstack: on each started NIC's first network and as global
 * servers and search (network-data.ts). eni: on each started NIC's stanzas only; an
 * interfaces file has no global DNS (cloud-init reads `lo`'s as a loopback device's).
 */
export type DnsForm = 'openstack' | 'eni';

/** The addressing of one NIC as it reaches cloud-init (the ENI file leaves DHCPv6 and SLAAC out). */
export interface DnsCarrier {
  readonly onBoot: boolean;
  readonly ipv4: NicConfiguration['ipv4']['boot'];
  readonly ipv6: NicConfiguration['ipv6']['boot'];
  /**
   * The ENI file's DNS lines sit on the NIC's inet6 stanza, after its inet one
   * (eni.ts). eni.py copies a NIC's DNS only to the stanzas after the one that has it.
   */
  readonly dnsAfterInet?: boolean;
}

const isIpv6 = (address: string): boolean => address.includes(':');

function listed(kind: string, items: readonly string[]): string | undefined {
  return items.length === 0 ? undefined : `${kind} ${items.join(', ')}`;
}

function lost(renderer: string, releases: string, items: readonly (string | false | undefined)[], why: string): string | undefined {
  const what = items.filter((i): i is string => typeof i === 'string');
  if (what.length === 0) return undefined;
  return `dns: cloud-init ${releases}, ${renderer} renderer: ${what.join(' and ')} not written (${why})`;
}

export function dnsRendererWarnings(dns: Initialization['dns'], carriers: readonly DnsCarrier[], form: DnsForm): string[] {
  if (dns.servers.length === 0 && dns.search.length === 0) return [];
  const started = carriers.filter((n) => n.onBoot);
  const hasStatic = started.some((n) => n.ipv4 === 'static' || n.ipv6 === 'static');
  const has4 = started.some((n) => n.ipv4 !== 'none');
  const has6 = started.some((n) => n.ipv6 !== 'none');
  const v4 = dns.servers.filter((a) => !isIpv6(a));
  const v6 = dns.servers.filter(isIpv6);
  const everything = [listed('DNS servers', dns.servers), listed('search domains', dns.search)];
  const noStatic = 'it takes DNS only from interfaces with a static address, and no NIC started at boot has one';
  // eni.py writes the global list on `lo`, an inet stanza: IPv4 servers always have one.
  // IPv6 ones are never before the stanza with the DNS in either of our files.
  const v4Stanza = form === 'openstack' || started.some((n) => n.ipv4 !== 'none' && n.dnsAfterInet !== true);
  const warnings = [
    // netplan.py: DNS from static subnets only; the global list goes only to interfaces
    // that have `addresses`. A DHCP or SLAAC interface gets no `nameservers`.
    hasStatic ? undefined : lost('netplan', '20.4 and later', everything, noStatic),
    // Without global DNS (the ENI file), networkd.py takes DNS from static subnets only,
    // and sysconfig.py wrote only the global list to resolv.conf until 24.2 (#5401).
    form === 'eni' && !hasStatic ? lost('networkd', '21.3 and later', everything, noStatic) : undefined,
    form === 'eni' && !hasStatic ? lost('sysconfig', '20.4 to 24.1', everything, noStatic) : undefined,
    // network_manager.py since 24.3 (#5496): a server only into an [ipv4]/[ipv6] section
    // of its own family that exists and is not disabled; search into every such section.
    lost(
      'network-manager',
      '24.3 and later',
      [!has4 && listed('DNS servers', v4), !has6 && listed('DNS servers', v6), !has4 && !has6 && listed('search domains', dns.search)],
      'it puts a server only on a connection with addressing of the same IP family, and no NIC started at boot has it',
    ),
    // eni.py since 25.2 (#6331): a server only into a stanza of its own family.
    lost(
      'eni',
      '25.2 and later',
      [!v4Stanza && listed('DNS servers', v4), !has6 && listed('DNS servers', v6)],
      'it writes a server only into a stanza of the same IP family, and no NIC started at boot has one',
    ),
    // eni.py since 26.1 (#6535): dns-search only into a stanza that has a server of its family.
    dns.servers.length > 0 && !(v4.length > 0 && v4Stanza) && !(v6.length > 0 && has6)
      ? lost('eni', '26.1 and later', [listed('search domains', dns.search)], "it writes dns-search only next to a server of the stanza's IP family, and no stanza has one")
      : undefined,
  ];
  return warnings.filter((w): w is string => w !== undefined);
}

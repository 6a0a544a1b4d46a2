/**
 * The legacy network file (oVirt's "ENI" protocol): /etc/network/interfaces text in
 * openstack/content/0000, pointed at by meta_data `network_config`. cloud-init only
 * parses it (eni.convert_eni_data) and renders its own configuration, so the text must
 * suit that parser:
 *  - it accepts one `iface` stanza per name, so a static IPv6 address next to IPv4
 *    goes on the alias `<nic>:1`, which the parser folds into the same device;
 *  - `hwaddress ether MAC` is how the parser learns a MAC to match the interface by;
 *  - it has no notion of DHCPv6 or SLAAC, so those settings are left out with a warning;
 *  - `auto` is what on_boot means here;
 *  - DNS goes on the NIC's static stanza if it has one (renderers such as netplan and
 *    networkd take DNS from static subnets only), else on its first; the file has no
 *    global DNS, so what a renderer cannot write is a build warning (dns-renderers.ts).
 */
import type { Problem } from '../errors.js';
import type { Initialization } from '../initialization/types.js';
import { dnsRendererWarnings } from './dns-renderers.js';
import { prefixToNetmask } from './network-data.js';
import type { ResolvedNic } from './nics.js';

export const ENI_CONTENT_PATH = '/content/0000';

export interface EniData {
  readonly text?: string;
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

/** A value that cannot break the line-and-word structure of the file. */
const WORD = /^[^\s#]+$/;

function stanza(name: string, family: 'inet' | 'inet6', method: string, auto: boolean, options: readonly (string | undefined)[]): string {
  const lines = [...(auto ? [`auto ${name}`] : []), `iface ${name} ${family} ${method}`];
  for (const option of options) if (option !== undefined) lines.push(`    ${option}`);
  return lines.join('\n');
}

function checkWords(values: readonly (string | undefined)[], path: string, problems: Problem[]): void {
  for (const v of values) {
    if (v !== undefined && !WORD.test(v)) problems.push({ path, message: `${JSON.stringify(v)} cannot be written to an interfaces file (spaces, # or line breaks)` });
  }
}

export function buildEni(init: Initialization, nics: readonly ResolvedNic[]): EniData {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  if (nics.length === 0) {
    if (init.dns.servers.length > 0 || init.dns.search.length > 0) {
      warnings.push('DNS servers/search domains are not written: the ENI file needs a NIC configuration to carry them');
    }
    return { problems, warnings };
  }
  checkWords([...init.dns.servers, ...init.dns.search], 'dns', problems);
  const dnsLines = [
    init.dns.servers.length === 0 ? undefined : `dns-nameservers ${init.dns.servers.join(' ')}`,
    init.dns.search.length === 0 ? undefined : `dns-search ${init.dns.search.join(' ')}`,
  ];
  const blocks: string[] = [];
  for (const { nic, mac, index } of nics) {
    const path = `nics[${String(index)}]`;
    const { ipv4, ipv6 } = nic;
    checkWords([nic.name, mac, ipv4.boot === 'static' ? ipv4.address : undefined, ipv4.boot === 'static' ? ipv4.gateway : undefined], path, problems);
    checkWords([ipv6.boot === 'static' ? ipv6.address : undefined, ipv6.boot === 'static' ? ipv6.gateway : undefined], path, problems);
    if (ipv6.boot !== 'none' && ipv6.boot !== 'static') {
      warnings.push(`nic ${nic.name}: IPv6 ${ipv6.boot} cannot be expressed in the ENI protocol and is left out (use the openstack protocol)`);
    }
    const hw = mac === undefined ? undefined : `hwaddress ether ${mac}`;
    const dns = nic.onBoot ? dnsLines : [];
    const v6 =
      ipv6.boot === 'static'
        ? [`address ${ipv6.address}`, `netmask ${String(ipv6.prefix)}`, ipv6.gateway === undefined ? undefined : `gateway ${ipv6.gateway}`]
        : undefined;
    if (ipv4.boot === 'none' && v6 !== undefined) {
      blocks.push(stanza(nic.name, 'inet6', 'static', nic.onBoot, [hw, ...v6, ...dns]));
      continue;
    }
    const v4 =
      ipv4.boot === 'static'
        ? [`address ${ipv4.address}`, `netmask ${prefixToNetmask(ipv4.prefix)}`, ipv4.gateway === undefined ? undefined : `gateway ${ipv4.gateway}`]
        : [];
    const method = ipv4.boot === 'none' ? 'manual' : ipv4.boot;
    const dnsOnV6 = ipv4.boot !== 'static' && v6 !== undefined;
    blocks.push(stanza(nic.name, 'inet', method, nic.onBoot, [hw, ...v4, ...(dnsOnV6 ? [] : dns)]));
    if (v6 !== undefined) blocks.push(stanza(`${nic.name}:1`, 'inet6', 'static', nic.onBoot, [...v6, ...(dnsOnV6 ? dns : [])]));
  }
  // DHCPv6 and SLAAC are left out above, so they give cloud-init no IPv6 subnet.
  const carriers = nics.map(({ nic }) => ({
    onBoot: nic.onBoot,
    ipv4: nic.ipv4.boot,
    ipv6: nic.ipv6.boot === 'static' ? ('static' as const) : ('none' as const),
    dnsAfterInet: nic.ipv4.boot === 'dhcp' && nic.ipv6.boot === 'static',
  }));
  warnings.push(...dnsRendererWarnings(init.dns, carriers, 'eni'));
  return { text: `${blocks.join('\n\n')}\n`, problems, warnings };
}

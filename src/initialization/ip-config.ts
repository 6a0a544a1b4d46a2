/**
 * A NIC's IPv4 or IPv6 settings from a boot protocol and address fields, the same rules
 * for every format: static needs an address and a prefix (IPv6's defaults to 64),
 * netmasks become prefix lengths, other protocols take no address.
 */
import * as checks from './checks.js';
import { IPV4_BOOT, IPV6_BOOT } from './common.js';
import type { Doc, Fields } from './doc.js';
import type { SourcePath } from './source-path.js';
import type { Ipv4Config, Ipv6Config } from './types.js';

export interface IpInput {
  readonly protocol: string | undefined;
  readonly protocolPath: SourcePath;
  /** The protocol field's own name, for "is required when boot_protocol is static". */
  readonly protocolName: string;
  /** The mapping that holds `address`, the netmask and `gateway`. */
  readonly fields: Fields;
  /** What the format calls the netmask: oVirt `netmask`, the native schema `prefix` too. */
  readonly netmaskKey: string;
}

interface Family<B extends string> {
  readonly boots: Readonly<Record<string, B>>;
  readonly address: (v: string) => checks.Checked<string>;
  readonly prefix: (v: string) => checks.Checked<number>;
  /** The prefix when none is given, or undefined when one is required. */
  readonly defaultPrefix?: string;
}

const IPV4: Family<Ipv4Config['boot']> = { boots: IPV4_BOOT, address: checks.ipv4, prefix: checks.ipv4Prefix };
// oVirt's IPv6 netmask is a prefix length and is often left out: /64 is the norm.
const IPV6: Family<Ipv6Config['boot']> = { boots: IPV6_BOOT, address: checks.ipv6, prefix: checks.ipv6Prefix, defaultPrefix: '64' };

function ipConfig<B extends string>(family: Family<B>, doc: Doc, input: IpInput) {
  const { fields: f } = input;
  const boot = doc.choice(input.protocol, input.protocolPath, family.boots) ?? (input.protocol === undefined ? ('none' as B) : undefined);
  // Read even when unused, so a malformed value is reported whatever the protocol.
  const given = (key: string) => {
    const v = f.text(key);
    return v === '' ? undefined : v;
  };
  const [addressText, netmaskText, gatewayText] = [given('address'), given(input.netmaskKey), given('gateway')];
  if (boot === undefined || !f.valid) return undefined;
  if (boot !== 'static') return { boot };
  const address = doc.check(addressText, f.at('address'), family.address);
  if (addressText === undefined) doc.problem(f.at('address'), `is required when ${input.protocolName} is static`);
  const netmask = netmaskText ?? family.defaultPrefix;
  const prefix = netmask === undefined ? doc.problem(f.at(input.netmaskKey), `is required when ${input.protocolName} is static`) : doc.check(netmask, f.at(input.netmaskKey), family.prefix);
  const gateway = doc.check(gatewayText, f.at('gateway'), family.address);
  if (address === undefined || prefix === undefined) return undefined;
  return { boot: 'static' as const, address, prefix, ...(gateway === undefined ? {} : { gateway }) };
}

export function ipv4Config(doc: Doc, input: IpInput): Ipv4Config | undefined {
  return ipConfig(IPV4, doc, input) as Ipv4Config | undefined;
}

export function ipv6Config(doc: Doc, input: IpInput): Ipv6Config | undefined {
  return ipConfig(IPV6, doc, input) as Ipv6Config | undefined;
}

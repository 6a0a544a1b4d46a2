/**
 * Network settings, case by case, in the manner of oVirt's CloudInitHandlerTest: each
 * drive is read back by cloud-init 22.4 itself (read_config_drive, convert_net_json,
 * eni.convert_eni_data) and we assert what cloud-init will configure.
 */
import assert from 'node:assert/strict';
import { buildDriveTree, type BuiltDrive } from '../../src/cloudinit/index.js';
import type { Initialization } from '../../src/initialization/types.js';
import type { DomainFacts } from '../../src/cloudinit/types.js';
import { facts, initialization, nic } from '../helpers/initialization.js';
import { readWithCloudInit, type CloudInitView, type NetConfigEntry } from './cloud-init-oracle.js';
import { assertSound, GUEST_MACS, MAC0, MAC1, MAC2, THREE_NICS } from './cases.js';

interface Case {
  readonly name: string;
  readonly init: Initialization;
  readonly facts?: DomainFacts;
  readonly check: (view: CloudInitView, built: BuiltDrive) => void;
}

function physical(view: CloudInitView, name: string): NetConfigEntry {
  const entry = view.network?.config.find((c) => c.type === 'physical' && c.name === name);
  assert.ok(entry, `cloud-init configures no interface named ${name}`);
  return entry;
}

function globalDns(view: CloudInitView, key: 'address' | 'search'): string[] {
  return (view.network?.config ?? []).filter((c) => c.type === 'nameserver').flatMap((c) => {
    const value = (c as Record<string, unknown>)[key];
    return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
  });
}

const ONE_NIC = facts({ nics: [{ mac: MAC0 }] });
const dns = { servers: ['192.0.2.53', '2001:db8::53'], search: ['example.com'] };

const CASES: readonly Case[] = [
  {
    name: 'static IPv4 with gateway, matched by the domain NIC MAC',
    init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' } })] }),
    facts: ONE_NIC,
    check: (view) => {
      const eth0 = physical(view, 'eth0');
      assert.equal(eth0.mac_address, MAC0);
      assert.deepEqual(eth0.subnets, [{ type: 'static', address: '192.0.2.10', netmask: '255.255.255.0', gateway: '192.0.2.1', ipv4: true }]);
    },
  },
  {
    name: 'static IPv6 only, prefix as netmask, router advertisements off',
    init: initialization({ nics: [nic('eth0', { ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64, gateway: '2001:db8::1' } })] }),
    facts: ONE_NIC,
    check: (view) => {
      const eth0 = physical(view, 'eth0');
      assert.equal(eth0['accept-ra'], false);
      assert.deepEqual(eth0.subnets, [{ type: 'static6', address: '2001:db8::10', netmask: '64', gateway: '2001:db8::1', ipv6: true }]);
    },
  },
  {
    name: 'DHCP for IPv4 and stateful DHCPv6',
    init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'dhcp' } })] }),
    facts: ONE_NIC,
    check: (view) => assert.deepEqual(physical(view, 'eth0').subnets, [{ type: 'dhcp4' }, { type: 'dhcp6' }]),
  },
  {
    name: 'IPv6 autoconf as SLAAC',
    init: initialization({ nics: [nic('eth0', { ipv6: { boot: 'autoconf' } })] }),
    facts: ONE_NIC,
    check: (view) => assert.deepEqual(physical(view, 'eth0').subnets, [{ type: 'ipv6_slaac' }]),
  },
  {
    name: 'DHCPv6 stateless (dhcp+autoconf)',
    init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'dhcp+autoconf' } })] }),
    facts: ONE_NIC,
    check: (view) => assert.deepEqual(physical(view, 'eth0').subnets, [{ type: 'dhcp4' }, { type: 'ipv6_dhcpv6-stateless' }]),
  },
  {
    name: 'DNS servers only: no network_data.json, so cloud-init keeps its DHCP fallback, and a warning',
    init: initialization({ dns }),
    check: (view, built) => {
      assert.equal(view.network, undefined);
      assert.equal(built.tree.has('openstack/latest/network_data.json'), false);
      assert.match(built.warnings.join('\n'), /DNS servers\/search domains are not written/);
    },
  },
  {
    name: 'NIC not on boot: named by MAC, left without addresses, with a warning',
    init: initialization({ nics: [nic('eth0', { onBoot: false, ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24 } })] }),
    facts: ONE_NIC,
    check: (view, built) => {
      const eth0 = physical(view, 'eth0');
      assert.equal(eth0.mac_address, MAC0);
      assert.deepEqual(eth0.subnets, []);
      assert.match(built.warnings.join('\n'), /nic eth0: on_boot is false/);
    },
  },
  {
    name: 'several NICs: MACs from the domain by position and given explicitly; DNS per NIC and global',
    init: initialization({
      dns,
      nics: [
        nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' }, ipv6: { boot: 'autoconf' } }),
        nic('eth1', { ipv4: { boot: 'dhcp' } }),
        nic('data', { mac: MAC2, ipv4: { boot: 'static', address: '198.51.100.7', prefix: 25 } }),
      ],
    }),
    facts: THREE_NICS,
    check: (view) => {
      assert.equal(physical(view, 'eth0').mac_address, MAC0);
      assert.equal(physical(view, 'eth1').mac_address, MAC1);
      const data = physical(view, 'data');
      assert.equal(data.mac_address, MAC2);
      assert.deepEqual(data.subnets, [
        { type: 'static', address: '198.51.100.7', netmask: '255.255.255.128', ipv4: true, dns_nameservers: dns.servers, dns_search: dns.search },
      ]);
      // DNS on the static network of eth0 only, not also on its SLAAC one.
      const eth0Subnets = physical(view, 'eth0').subnets ?? [];
      assert.deepEqual(eth0Subnets[0]?.['dns_nameservers'], dns.servers);
      assert.equal(eth0Subnets[1]?.['dns_nameservers'], undefined);
      // Global servers once each, and the search list global too (network-data.ts).
      assert.deepEqual(globalDns(view, 'address'), dns.servers);
      assert.deepEqual(globalDns(view, 'search'), dns.search);
    },
  },
  {
    name: 'no network settings at all: no network_data.json and no warning',
    init: initialization(),
    check: (view, built) => {
      assert.equal(view.network, undefined);
      assert.deepEqual(built.warnings, []);
    },
  },
  {
    name: 'ENI protocol: IPv4 and static IPv6 on one device, MAC, DNS, on_boot as auto',
    init: initialization({
      networkProtocol: 'eni',
      dns,
      nics: [
        nic('eth0', {
          ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' },
          ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64, gateway: '2001:db8::1' },
        }),
        nic('eth1', { onBoot: false, ipv4: { boot: 'dhcp' }, ipv6: { boot: 'autoconf' } }),
      ],
    }),
    facts: facts({ nics: [{ mac: MAC0 }, { mac: MAC1 }] }),
    check: (view, built) => {
      assert.equal(view.network, undefined);
      assert.equal(built.tree.has('openstack/latest/network_data.json'), false);
      const eth0 = view.eni?.config.find((c) => c.name === 'eth0');
      assert.ok(eth0, 'cloud-init reads eth0 from the ENI file');
      assert.equal(eth0.mac_address, MAC0);
      const subnets = (eth0.subnets ?? []).map(({ _orig_eni_name: _ignored, ...rest }) => rest);
      assert.deepEqual(subnets, [
        { type: 'static', control: 'auto', address: '192.0.2.10', netmask: '255.255.255.0', gateway: '192.0.2.1', dns_nameservers: dns.servers, dns_search: dns.search },
        { type: 'static', control: 'auto', address: '2001:db8::10', netmask: '64', gateway: '2001:db8::1' },
      ]);
      const eth1 = view.eni?.config.find((c) => c.name === 'eth1');
      assert.deepEqual(eth1?.subnets?.map((s) => [s['type'], s['control']]), [['dhcp', 'manual']]);
      assert.match(built.warnings.join('\n'), /nic eth1: IPv6 autoconf cannot be expressed in the ENI protocol/);
    },
  },
];

/**
 * `cloud-init devel net-convert` renders what cloud-init read for netplan and ENI, and
 * every static address and matched MAC reaches both.
 */
function assertRendered(view: CloudInitView): void {
  assert.ok(view.rendered, 'net-convert produced nothing');
  const netplan = Object.values(view.rendered.netplan).join('\n');
  const eni = Object.values(view.rendered.eni).join('\n');
  assert.match(netplan, /^network:/m);
  assert.match(eni, /^auto lo$/m);
  for (const entry of (view.network ?? view.eni)?.config ?? []) {
    if (entry.type !== 'physical') continue;
    if (typeof entry.mac_address === 'string' && view.network !== undefined) {
      // The guest interface is found by MAC and renamed to the requested name.
      assert.ok(netplan.includes(`macaddress: '${entry.mac_address}'`), `netplan does not match ${entry.mac_address}`);
      assert.ok(netplan.includes(`set-name: ${String(entry.name)}`), `netplan does not name ${String(entry.name)}`);
      assert.ok(eni.includes(`ATTR{address}=="${entry.mac_address}", NAME="${String(entry.name)}"`), `ENI has no udev rule for ${entry.mac_address}`);
    }
    for (const subnet of entry.subnets ?? []) {
      const address = subnet['address'];
      if (typeof address !== 'string') continue;
      assert.ok(netplan.includes(address), `netplan lacks ${address}`);
      assert.ok(eni.includes(address), `ENI lacks ${address}`);
    }
  }
}

describe('cloudinit network translation, read back by cloud-init 22.4', function () {
  this.timeout(120_000);
  const built = CASES.map((c) => buildDriveTree(c.init, c.facts ?? facts()));
  let views: CloudInitView[] = [];

  before(async () => {
    views = await readWithCloudInit(built.map((b) => ({ tree: b.tree, macs: GUEST_MACS })));
  });

  CASES.forEach((c, i) => {
    it(c.name, () => {
      const view = views[i];
      const drive = built[i];
      assert.ok(view !== undefined && drive !== undefined);
      assertSound(view, drive);
      c.check(view, drive);
      if (view.network !== undefined || view.eni !== undefined) assertRendered(view);
    });
  });
});

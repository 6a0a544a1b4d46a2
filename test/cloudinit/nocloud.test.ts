/**
 * The NoCloud layout next to the config-2 one: the same user data and the same network,
 * in NoCloud's files at the volume's root. What cloud-init's readers make of it is
 * generations.test.ts's and vendor-data-generations.test.ts's job; these pin the layout.
 */
import assert from 'node:assert/strict';
import yaml from 'js-yaml';
import {
  buildDriveTree,
  DRIVE_FORMATS,
  DRIVE_LABELS,
  firstIdentity,
  labelProblem,
  NOCLOUD_PATHS,
  USER_DATA_PATH,
  type BuiltDrive,
} from '../../src/cloudinit/index.js';
import type { DomainFacts } from '../../src/cloudinit/types.js';
import type { Initialization } from '../../src/initialization/types.js';
import { DOMAIN_UUID, facts, initialization, nic } from '../helpers/initialization.js';
import { MAC0, MAC1, seedInitialization, SEED_FACTS } from './cases.js';

const KEY = '22'.repeat(32);

function nocloud(init: Initialization, f: DomainFacts): BuiltDrive {
  return buildDriveTree(init, f, firstIdentity(init, f), 'nocloud');
}

function text(built: BuiltDrive, path: string): string {
  const bytes = built.tree.get(path);
  assert.ok(bytes, `no ${path} on the drive (it has ${[...built.tree.keys()].join(', ')})`);
  return Buffer.from(bytes).toString('utf8');
}

describe('cloudinit NoCloud layout', () => {
  it("puts meta-data, user-data, network-config and vendor-data at the root, and nothing of config-2's", () => {
    const built = nocloud(seedInitialization(), { ...SEED_FACTS, reportKey: KEY });
    assert.deepEqual([...built.tree.keys()], ['meta-data', 'network-config', 'user-data', 'vendor-data']);
  });

  it('carries byte for byte the user data the config-2 drive carries, and the same instance-id and warnings', () => {
    const init = seedInitialization();
    const ours = nocloud(init, SEED_FACTS);
    const configDrive = buildDriveTree(init, SEED_FACTS);
    assert.equal(text(ours, NOCLOUD_PATHS.userData), text(configDrive, USER_DATA_PATH));
    assert.equal(ours.instanceId, `${DOMAIN_UUID}-g1`);
    assert.equal(ours.instanceId, configDrive.instanceId);
    assert.deepEqual(ours.warnings, configDrive.warnings);
  });

  it('writes meta-data as YAML: instance-id, local-hostname as the FQDN, root keys as public-keys', () => {
    const init = initialization({ ...seedInitialization(), domain: 'example.com' });
    const meta = yaml.load(text(nocloud(init, SEED_FACTS), NOCLOUD_PATHS.metaData));
    assert.deepEqual(meta, {
      'instance-id': `${DOMAIN_UUID}-g1`,
      'local-hostname': 'cloudInitInstanceName.example.com',
      'public-keys': [init.users[0]?.authorizedKeys[0]],
    });
  });

  it("keeps a hostile host name or key a string inside meta-data, never YAML structure", () => {
    const hostile = 'web1\ninstance-id: evil\n: [x]';
    const meta = yaml.load(text(nocloud(initialization({ hostName: hostile, instanceId: 'yes' }), facts()), NOCLOUD_PATHS.metaData)) as Record<string, unknown>;
    assert.equal(meta['instance-id'], 'yes', 'a YAML 1.1 boolean word stays a string');
    assert.equal(meta['local-hostname'], hostile);
    assert.deepEqual(Object.keys(meta), ['instance-id', 'local-hostname']);
  });

  it('writes the network as version 1 from the same model as network_data.json: MAC match, static with gateway, DHCP, SLAAC, DNS per NIC and global', () => {
    const built = nocloud(seedInitialization(), SEED_FACTS);
    const doc = yaml.load(text(built, NOCLOUD_PATHS.networkConfig)) as { version: number; config: Record<string, unknown>[] };
    assert.equal(doc.version, 1);
    const dns = { dns_nameservers: ['8.8.8.8', '127.0.0.1'], dns_search: ['qa.lab', 'redhat.com'] };
    assert.deepEqual(doc.config, [
      {
        type: 'physical',
        name: 'eth0',
        mac_address: MAC0,
        subnets: [
          { type: 'static', address: '192.168.2.11/24', gateway: '192.168.2.1', ...dns },
          { type: 'static6', address: '2001::1234/64', gateway: '2001::fffa' },
        ],
      },
      { type: 'physical', name: 'eth1', mac_address: MAC1, subnets: [{ type: 'dhcp4', ...dns }] },
      { type: 'physical', name: 'eth2', mac_address: '52:54:00:00:00:03', subnets: [{ type: 'ipv6_slaac', ...dns }] },
      { type: 'nameserver', address: ['8.8.8.8', '127.0.0.1'], search: ['qa.lab', 'redhat.com'] },
    ]);
  });

  it('names a NIC not on boot without configuring it, with the config-2 warning', () => {
    const init = initialization({ nics: [nic('eth0', { onBoot: false, ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24 } })] });
    const built = nocloud(init, facts({ nics: [{ mac: MAC0 }] }));
    const doc = yaml.load(text(built, NOCLOUD_PATHS.networkConfig)) as { config: unknown[] };
    assert.deepEqual(doc.config, [{ type: 'physical', name: 'eth0', mac_address: MAC0, subnets: [] }]);
    assert.match(built.warnings.join('\n'), /nic eth0: on_boot is false/);
  });

  it("writes no network-config without NICs, so cloud-init keeps its DHCP fallback", () => {
    const built = nocloud(initialization({ dns: { servers: ['192.0.2.53'], search: [] } }), facts());
    assert.equal(built.tree.has(NOCLOUD_PATHS.networkConfig), false);
    assert.match(built.warnings.join('\n'), /DNS servers\/search domains are not written/);
  });

  it('puts the ENI protocol in meta-data network-interfaces, the text config-2 puts in openstack/content/0000', () => {
    const init = initialization({ networkProtocol: 'eni', nics: [nic('eth0', { ipv4: { boot: 'dhcp' } })] });
    const f = facts({ nics: [{ mac: MAC0 }] });
    const built = nocloud(init, f);
    assert.equal(built.tree.has(NOCLOUD_PATHS.networkConfig), false);
    const meta = yaml.load(text(built, NOCLOUD_PATHS.metaData)) as Record<string, unknown>;
    assert.equal(meta['network-interfaces'], text(buildDriveTree(init, f), 'openstack/content/0000'));
  });

  it('gives vendor-data the reporter as a plain #cloud-config, the document config-2 wraps in vendor_data.json', () => {
    const f = { ...SEED_FACTS, reportKey: KEY };
    const vendor = text(nocloud(seedInitialization(), f), NOCLOUD_PATHS.vendorData);
    assert.match(vendor, /^#cloud-config\n/);
    const wrapped = JSON.parse(text(buildDriveTree(seedInitialization(), f), 'openstack/latest/vendor_data.json')) as { 'cloud-init': string };
    assert.equal(vendor, wrapped['cloud-init']);
    assert.equal(nocloud(seedInitialization(), SEED_FACTS).tree.has(NOCLOUD_PATHS.vendorData), false, 'no report key, no vendor-data');
  });

  it('gives the same bytes for the same settings, and other bytes than config-2 (a format change is a new drive)', () => {
    const a = nocloud(seedInitialization(), SEED_FACTS);
    const b = nocloud(seedInitialization(), SEED_FACTS);
    assert.deepEqual(a.tree, b.tree);
    assert.notDeepEqual(a.tree, buildDriveTree(seedInitialization(), SEED_FACTS).tree);
  });
});

describe('cloudinit drive formats and labels', () => {
  it('labels each format as its datasource looks for it', () => {
    assert.deepEqual(DRIVE_FORMATS, ['configdrive', 'nocloud']);
    assert.deepEqual(DRIVE_LABELS, { configdrive: 'config-2', nocloud: 'cidata' });
    for (const format of DRIVE_FORMATS) assert.equal(labelProblem(format, DRIVE_LABELS[format]), undefined);
    assert.equal(labelProblem('nocloud', 'CIDATA'), undefined, 'ds-identify and blkid match CIDATA too');
  });

  it('refuses the OpenStack layout under cidata in any case, pointing at --format nocloud', () => {
    for (const label of ['cidata', 'CIDATA', 'CiData']) assert.match(labelProblem('configdrive', label) ?? '', /--format nocloud/);
  });

  it('refuses a NoCloud drive under any label but cidata', () => {
    for (const label of ['config-2', 'CiData', 'cidata ', 'OEMDRV']) assert.match(labelProblem('nocloud', label) ?? '', /must be labelled cidata/, label);
  });
});

/**
 * oVirt documents as oVirt clients put them on the wire (test/fixtures/ovirt): SDK v3 and
 * v4 actions, REST VMs in XML and JSON. The engine's fields around the initialization are
 * ignored in one warning; inside it nothing unknown passes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { buildDriveTree } from '../../src/cloudinit/drive.js';
import { AgentError } from '../../src/errors.js';
import { parseInitialization, parseInitializationValue } from '../../src/initialization/index.js';
import { clearPassword, facts, initialization, nic, plain, user } from '../helpers/initialization.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
const fixture = (name: string) => readFileSync(resolve(FIXTURES, name), 'utf8');

function problems(text: string): string[] {
  try {
    parseInitialization(text);
  } catch (err) {
    assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION', `unexpected ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('parsed without a problem');
}

/** The settings of sdk4-start.xml, rest-vm.xml and their JSON forms. */
const WEB1 = initialization({
  hostName: 'web1',
  domain: 'example.com',
  timezone: 'Europe/Prague',
  systemLocale: 'en_US.UTF-8',
  users: [user('root', { password: clearPassword('s3cret'), authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBkz ops@example.com'] })],
  regenerateSshKeys: false,
  dns: { servers: ['192.0.2.53', '192.0.2.54'], search: ['example.com'] },
  nics: [
    nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' }, ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64, gateway: '2001:db8::1' } }),
    nic('eth1', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'dhcp+autoconf' } }),
  ],
  customScript: '#cloud-config\npackages:\n  - nginx\n',
});

describe('oVirt shapes: what SDKs and the REST API send', () => {
  const CASES: [string, string][] = [
    ['sdk4-start.xml', "/action/use_cloud_init is ignored: outside initialization, the engine's fields, not the guest's first-boot settings"],
    ['rest-vm.xml', "/vm/@href, /vm/@id, /vm/actions, /vm/name, /vm/description, /vm/memory, /vm/os, /vm/status, /vm/cluster are ignored: outside initialization, the engine's fields, not the guest's first-boot settings"],
    ['rest-start.json', "use_cloud_init is ignored: outside initialization, the engine's fields, not the guest's first-boot settings"],
    ['rest-vm.json', "href, id, name, description, memory, os, status, cluster are ignored: outside initialization, the engine's fields, not the guest's first-boot settings"],
  ];
  for (const [name, warning] of CASES) {
    it(`reads ${name} into the settings of its initialization, the engine's fields named in one warning`, () => {
      const parsed = parseInitialization(fixture(`ovirt/${name}`));
      assert.deepEqual(plain(parsed.initialization), plain(WEB1));
      assert.deepEqual(parsed.warnings, [warning]);
    });
  }

  it("gives the drive of the seed's REST XML for each SDK v3 example as vm.start(action) posts it", () => {
    for (const n of [1, 2]) {
      const wire = parseInitialization(fixture(`ovirt/sdk3-start-example-${String(n)}.xml`)).initialization;
      const rest = parseInitialization(fixture(`ovirt/rest-example-${String(n)}.xml`)).initialization;
      const domain = facts({ nics: [{ mac: '52:54:00:00:00:01' }] });
      assert.deepEqual(buildDriveTree(wire, domain).tree, buildDriveTree(rest, domain).tree, `example ${String(n)}`);
    }
  });

  it("reads SDK v3's attributes: <ip address netmask gateway/> and <mac address/>", () => {
    const { initialization: init } = parseInitialization(fixture('ovirt/sdk3-start-example-2.xml').replace('<name>eth0</name>', '<name>eth0</name><mac address="52:54:00:AA:BB:CC"/>'));
    assert.deepEqual(init.nics, [nic('eth0', { mac: '52:54:00:aa:bb:cc', ipv4: { boot: 'static', address: '192.168.100.10', prefix: 24, gateway: '192.168.100.1' } })]);
  });

  it('still refuses an unknown field inside the initialization of an action, at its element path', () => {
    assert.deepEqual(problems('<action><vm><initialization><host_name>a</host_name><hots_name>b</hots_name></initialization></vm></action>'), ['/action/vm/initialization/hots_name: is not a known field']);
    assert.deepEqual(problems(JSON.stringify({ use_cloud_init: true, vm: { name: 'x', initialization: { host_nme: 'b' } } })), ['vm.initialization.host_nme: is not a known field']);
  });

  it('refuses an action or a VM without an initialization, naming the wrapper', () => {
    assert.deepEqual(problems('<action><use_cloud_init>true</use_cloud_init><vm><name>x</name></vm></action>'), ['/action/vm: has no initialization element']);
    assert.deepEqual(problems(JSON.stringify({ vm: { name: 'x', initialisation: {} } })), ['vm: has no initialization element']);
  });

  it('refuses attributes no field has: unknown ones, on a text element, or given also as an element', () => {
    const ip = (attrs: string, inner = '') => `<vm><initialization><nic_configurations><nic_configuration><name>eth0</name><boot_protocol>static</boot_protocol><ip ${attrs}>${inner}</ip></nic_configuration></nic_configurations></initialization></vm>`;
    const at = '/vm/initialization/nic_configurations/nic_configuration[0]/ip';
    assert.ok(problems(ip('address="10.0.0.2" prefix="24"')).includes(`${at}/@prefix: is not a known field`));
    assert.ok(problems(ip('address="10.0.0.2" netmask="24"', '<address>10.0.0.3</address>')).includes(`${at}/address: is given both as an attribute and as an element`));
    assert.deepEqual(problems('<initialization><host_name lang="en">web1</host_name></initialization>'), ['/initialization/host_name/@lang: is not a known field']);
    assert.deepEqual(problems('<initialization>stray<host_name>web1</host_name></initialization>'), ['/initialization: has text besides its child elements']);
  });

  it('takes namespace declarations for what they are, not fields', () => {
    const { initialization: init, warnings } = parseInitialization('<initialization xmlns="urn:x" xmlns:a="urn:a"><host_name>web1</host_name></initialization>');
    assert.equal(init.hostName, 'web1');
    assert.deepEqual(warnings, []);
  });

  it('refuses __proto__, constructor and prototype as attribute names before parsing', () => {
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      assert.deepEqual(problems(`<vm><initialization><host_name>a</host_name><nic_configurations ${name}="x"/></initialization></vm>`), [': XML element and attribute names __proto__, constructor and prototype are refused']);
    }
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });

  it('lists thousands of engine fields in one bounded warning', () => {
    const fields = Array.from({ length: 5000 }, (_, i) => `<f${String(i)}>x</f${String(i)}>`).join('');
    const { warnings } = parseInitialization(`<vm>${fields}<initialization><host_name>a</host_name></initialization></vm>`);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^\/vm\/f0, \/vm\/f1, .*\/vm\/f9 and 4990 more are ignored/);
    assert.ok(warnings[0]!.length < 400, warnings[0]);
  });

  it("ignores oVirt's OVF configuration inside the initialization with its reason", () => {
    const { warnings } = parseInitialization('<initialization><host_name>a</host_name><configuration><type>ovf</type><data>x</data></configuration></initialization>');
    assert.deepEqual(warnings, ['/initialization/configuration is ignored: it describes a VM to import (an OVF), not its first boot']);
  });

  it('throws nothing but INVALID_INITIALIZATION for arbitrary values in and around action and vm wrappers (fast-check)', () => {
    const wrapped = fc.oneof(
      fc.jsonValue({ maxDepth: 5 }).map((v) => ({ action: v })),
      fc.jsonValue({ maxDepth: 5 }).map((v) => ({ vm: v, use_cloud_init: true })),
      fc.jsonValue({ maxDepth: 5 }).map((v) => ({ name: 'x', initialization: v })),
      fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })).map((d) => ({ ...d, vm: { initialization: { host_name: 'a' } } })),
    );
    fc.assert(
      fc.property(wrapped, (doc) => {
        try {
          const { warnings } = parseInitializationValue(doc);
          assert.ok(warnings.length <= 2);
        } catch (err) {
          if (!(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION')) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

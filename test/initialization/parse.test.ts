/**
 * Golden tests for the seed's documents, and the same settings through every format.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectFormat, parseInitialization } from '../../src/initialization/index.js';
import { seedInitialization } from '../cloudinit/cases.js';
import { clearPassword, initialization, nic, plain, user } from '../helpers/initialization.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
const fixture = (name: string) => readFileSync(resolve(FIXTURES, name));

describe('initialization parsing: the seed documents', () => {
  it("parses the seed's REST XML verbatim into the settings it describes", () => {
    const parsed = parseInitialization(fixture('seed/initialization.xml'));
    assert.deepEqual(plain(parsed.initialization), plain(seedInitialization()));
    assert.deepEqual(parsed.warnings, []);
  });

  it("parses SDK example 1: the first file's cloud-config content becomes the custom script, with a warning", () => {
    const parsed = parseInitialization(fixture('seed/sdk-example-1.json'));
    const expected = initialization({
      hostName: 'rheltest001.example.com',
      users: [user('root', { password: clearPassword('secret') })],
      customScript: 'write_files:\n-   content: |\n        search example.com\n        nameserver 10.10.10.1\n        nameserver 10.10.10.2\n    path: /etc/resolv.conf',
    });
    assert.deepEqual(plain(parsed.initialization), plain(expected));
    assert.deepEqual(parsed.warnings, [
      'vm.initialization.cloud_init.files.file[0] is taken as the user data, not written to /etc/resolv.conf: every top-level key ("write_files") is a cloud-init module\'s, so cloud-init reads it as cloud-config',
    ]);
  });

  it('parses SDK example 2: key, regenerated host keys, static NIC with a dotted netmask, /etc/motd written, where oVirt would run it', () => {
    const parsed = parseInitialization(fixture('seed/sdk-example-2.json'));
    const expected = initialization({
      hostName: 'testvm.example.com',
      users: [user('root', { password: clearPassword('SecretPassword'), authorizedKeys: ['ssh-rsa AAAAB3NzaC1yc.........'] })],
      regenerateSshKeys: true,
      nics: [nic('eth0', { ipv4: { boot: 'static', address: '192.168.100.10', prefix: 24, gateway: '192.168.100.1' } })],
      files: [{ path: '/etc/motd', content: new TextEncoder().encode('Automatic configuration') }],
    });
    assert.deepEqual(plain(parsed.initialization), plain(expected));
    assert.deepEqual(parsed.warnings, [
      'vm.initialization.cloud_init.files.file[0] is written to /etc/motd, not taken as the user data: it is not a YAML mapping (oVirt engine takes a first file as the custom script; start it with #cloud-config for that)',
    ]);
  });
});

const SAME_SETTINGS: Record<string, { text: string; name: string }> = {
  'oVirt REST XML (v4 names)': {
    name: 'x.xml',
    text: `<initialization>
  <host_name>web1</host_name><domain>example.com</domain><timezone>Europe/Paris</timezone>
  <user_name>alice</user_name><root_password>pw1</root_password>
  <authorized_ssh_keys>ssh-ed25519 AAAAC3Nza alice@x
ssh-rsa AAAAB3Nza bob@y</authorized_ssh_keys>
  <regenerate_ssh_keys>false</regenerate_ssh_keys>
  <dns_servers>192.0.2.53</dns_servers><dns_search>example.com</dns_search>
  <nic_configurations><nic_configuration><name>eth0</name><boot_protocol>STATIC</boot_protocol>
    <ip><address>192.0.2.10</address><netmask>255.255.255.0</netmask><gateway>192.0.2.1</gateway></ip>
    <ipv6_boot_protocol>poly_dhcp_autoconf</ipv6_boot_protocol><on_boot>true</on_boot></nic_configuration></nic_configurations>
  <custom_script>#!/bin/sh
echo hi</custom_script>
  <cloud_init_network_protocol>eni</cloud_init_network_protocol>
</initialization>`,
  },
  'oVirt REST JSON': {
    name: 'x.json',
    text: JSON.stringify({
      initialization: {
        host_name: 'web1', domain: 'example.com', timezone: 'Europe/Paris', user_name: 'alice', root_password: 'pw1',
        authorized_ssh_keys: 'ssh-ed25519 AAAAC3Nza alice@x\nssh-rsa AAAAB3Nza bob@y', regenerate_ssh_keys: 'false',
        dns_servers: '192.0.2.53', dns_search: 'example.com',
        nic_configurations: { nic_configuration: [{ name: 'eth0', boot_protocol: 'static', ip: { address: '192.0.2.10', netmask: '255.255.255.0', gateway: '192.0.2.1' }, ipv6_boot_protocol: 'poly_dhcp_autoconf', on_boot: 'true' }] },
        custom_script: '#!/bin/sh\necho hi', cloud_init_network_protocol: 'eni',
      },
    }),
  },
  'native YAML': {
    name: 'x.yaml',
    text: `configdrive: 1
hostname: web1
domain: example.com
timezone: Europe/Paris
users:
  - name: alice
    password: pw1
    ssh_authorized_keys: [ssh-ed25519 AAAAC3Nza alice@x, ssh-rsa AAAAB3Nza bob@y]
regenerate_ssh_keys: false
dns: {servers: [192.0.2.53], search: [example.com]}
nics:
  - name: eth0
    ipv4: {boot: static, address: 192.0.2.10, prefix: 24, gateway: 192.0.2.1}
    ipv6: {boot: dhcp+autoconf}
custom_script: |-
  #!/bin/sh
  echo hi
network_protocol: eni
`,
  },
};

describe('initialization parsing: one setting, every format', () => {
  const results = Object.entries(SAME_SETTINGS).map(([label, { text, name }]) => [label, parseInitialization(text, detectFormat(text, name))] as const);

  it('gives deep-equal settings from oVirt XML, oVirt JSON and native YAML', () => {
    const [first, ...rest] = results;
    for (const [label, parsed] of rest) assert.deepEqual(plain(parsed.initialization), plain(first![1].initialization), label);
  });

  it('applies root_password and authorized_ssh_keys to user_name, not root', () => {
    const init = results[0]![1].initialization;
    assert.deepEqual(init.users.map((u) => u.name), ['alice']);
    assert.equal(init.users[0]?.password?.value.reveal(), 'pw1');
    assert.equal(init.users[0]?.authorizedKeys.length, 2);
  });

  it('detects the format from the extension, else from the first character', () => {
    assert.equal(detectFormat('{}', 'a.YAML'), 'yaml');
    assert.equal(detectFormat('  <vm/>'), 'xml');
    assert.equal(detectFormat('\uFEFF{"a":1}'), 'json');
    assert.equal(detectFormat('configdrive: 1'), 'yaml');
  });
});

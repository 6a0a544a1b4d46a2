/**
 * Every validation rule fails with the field's path and a message naming what is wrong;
 * hostile documents fail fast with INVALID_INITIALIZATION; nothing prints a password.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { AgentError } from '../../src/errors.js';
import { parseInitialization, parseInitializationValue } from '../../src/initialization/index.js';

function problems(input: string | Uint8Array | object): string[] {
  const started = process.hrtime.bigint();
  try {
    if (typeof input === 'object' && !(input instanceof Uint8Array)) parseInitializationValue(input);
    else parseInitialization(input);
  } catch (err) {
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n, 'hang guard: took over 2 s');
    assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION', `unexpected ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('parsed without a problem');
}

const nicXml = (inner: string) => `<initialization><nic_configurations>
  <nic_configuration><name>eth0</name><boot_protocol>dhcp</boot_protocol></nic_configuration>
  <nic_configuration>${inner}</nic_configuration></nic_configurations></initialization>`;

describe('initialization validation', () => {
  const RULES: [string, string, RegExp][] = [
    ['a non-contiguous netmask', nicXml('<name>eth1</name><boot_protocol>static</boot_protocol><ip><address>10.0.0.2</address><netmask>255.0.255.0</netmask></ip>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/ip\/netmask: "255\.0\.255\.0" is not a valid netmask$/],
    ['a bad IPv4 address', nicXml('<name>eth1</name><boot_protocol>static</boot_protocol><ip><address>10.0.0.256</address><netmask>24</netmask></ip>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/ip\/address: "10\.0\.0\.256" is not a valid IPv4 address$/],
    ['a static protocol without an address', nicXml('<name>eth1</name><boot_protocol>static</boot_protocol>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/ip\/address: is required when boot_protocol is static$/],
    ['an IPv6 prefix over 128', nicXml('<name>eth1</name><ipv6_boot_protocol>static</ipv6_boot_protocol><ipv6><address>2001:db8::1</address><netmask>129</netmask></ipv6>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/ipv6\/netmask: "129" is not a valid IPv6 prefix length/],
    ['an unknown boot protocol', nicXml('<name>eth1</name><boot_protocol>bootp</boot_protocol>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/boot_protocol: "bootp" is not one of none, dhcp, static$/],
    ['a duplicate NIC name', nicXml('<name>eth0</name>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/name: "eth0" is also the name of \/initialization\/nic_configurations\/nic_configuration\[0\]$/],
    ['a bad interface name', nicXml('<name>eth:1</name>'), /^\/initialization\/nic_configurations\/nic_configuration\[1\]\/name: "eth:1" is not a valid interface name/],
    ['a bad host name', '<initialization><host_name>-bad-</host_name></initialization>', /^\/initialization\/host_name: "-bad-" is not a valid host name/],
    ['an unknown time zone', '<initialization><timezone>Mars/Olympus</timezone></initialization>', /^\/initialization\/timezone: "Mars\/Olympus" is not a known time zone/],
    ['a bad user name', '<initialization><user_name>Root User</user_name></initialization>', /^\/initialization\/user_name: "Root User" is not a valid user name/],
    ['a malformed SSH key', '<initialization><authorized_ssh_keys>not-a-key AAAA</authorized_ssh_keys></initialization>', /^\/initialization\/authorized_ssh_keys: "not-a-key AAAA" is not an SSH public key/],
    ['a bad DNS server', '<initialization><dns_servers>8.8.8.8 dns.example</dns_servers></initialization>', /^\/initialization\/dns_servers: "dns\.example" is not a valid IP address$/],
    ['a relative file path', '<initialization><files><file><name>etc/motd</name><content>x</content></file></files></initialization>', /^\/initialization\/files\/file\[0\]\/name: "etc\/motd" is not an absolute file path$/],
    ['a file path with ..', '<initialization><files><file><name>/etc/../shadow</name><content>x</content></file></files></initialization>', /^\/initialization\/files\/file\[0\]\/name: .* has an empty, "\." or "\.\." segment$/],
    ['invalid base64 content', '<initialization><files><file><name>/x</name><content>%%%</content><type>BASE64</type></file></files></initialization>', /^\/initialization\/files\/file\[0\]\/content: is not valid base64$/],
    ['an unknown element, with its path', '<vm><initialization><hostname>x</hostname></initialization></vm>', /^\/vm\/initialization\/hostname: is not a known field here \(it is a native-schema field/],
    ['a multicast MAC in the native schema', 'configdrive: 1\nnics: [{name: eth0, mac: "01:00:5e:00:00:01"}]\n', /^nics\[0\]\.mac: "01:00:5e:00:00:01" is a multicast address/],
    ['a native file mode that is not octal', 'configdrive: 1\nfiles: [{path: /x, content: y, mode: "rwx"}]\n', /^files\[0\]\.mode: "rwx" is not an octal mode/],
    ['a wrong native schema version', 'configdrive: 2\n', /^configdrive: must be 1/],
    ['an MD5-crypt password hash', '<initialization><root_password>$1$salt$hash</root_password></initialization>', /^\/initialization\/root_password: is an MD5-crypt hash, which is too weak/],
  ];

  for (const [what, input, expected] of RULES) {
    it(`rejects ${what}`, () => {
      const found = problems(input);
      assert.ok(found.some((p) => expected.test(p)), `expected ${String(expected)} in:\n${found.join('\n')}`);
    });
  }

  it('takes SSH key lines in full authorized_keys syntax, options and quoted values included, and refuses a bad option by its field', () => {
    const line = 'from="10.0.0.0/8,192.0.2.1",no-pty,command="echo \\"hi there\\"" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin@example';
    const parsed = parseInitialization(`<initialization><authorized_ssh_keys>${line.replaceAll('"', '&quot;')}</authorized_ssh_keys></initialization>`);
    assert.deepEqual(parsed.initialization.users[0]?.authorizedKeys, [line]);
    assert.deepEqual(problems('<initialization><authorized_ssh_keys>no-pty,bogus=&quot;x&quot; ssh-ed25519 AAAA</authorized_ssh_keys></initialization>'), [
      '/initialization/authorized_ssh_keys: "no-pty,bogus=\\"x\\" ssh-ed25519 AAAA" has an option sshd does not know: "bogus=\\"x\\""',
    ]);
  });

  it('lists every problem of a document, not just the first', () => {
    const found = problems('<initialization><host_name>-x-</host_name><timezone>Nowhere</timezone><user_name>9</user_name><dns_servers>nope</dns_servers><bogus/></initialization>');
    assert.equal(found.length, 5, found.join('\n'));
  });

  it('warns about Windows-only fields instead of failing', () => {
    const parsed = parseInitialization('<initialization><host_name>w</host_name><org_name>ACME</org_name><windows_license_key>K</windows_license_key></initialization>');
    assert.match(parsed.warnings.join('\n'), /^\/initialization\/org_name is ignored: it only configures Windows/m);
  });

  it('reports contradicting values for one setting from two places', () => {
    const found = problems('<initialization><host_name>a</host_name><host><address>b</address></host></initialization>');
    assert.match(found.join('\n'), /^\/initialization\/host\/address: contradicts \/initialization\/host_name, which says "a"$/m);
  });
});

describe('initialization hostile input', () => {
  it('refuses XML entities (billion laughs) and external entities without expanding them', () => {
    const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><initialization><host_name>&lol2;</host_name></initialization>';
    assert.match(problems(laughs).join(), /DOCTYPE or entity/);
    const xxe = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><initialization><custom_script>&e;</custom_script></initialization>';
    assert.match(problems(xxe).join(), /DOCTYPE or entity/);
  });

  it('refuses documents over 4 MiB before parsing them', () => {
    assert.match(problems(`<initialization><custom_script>${'x'.repeat(5 * 1024 * 1024)}</custom_script></initialization>`).join(), /over the 4194304-byte limit/);
  });

  it('refuses 10,000-deep nesting in XML, JSON and YAML', () => {
    assert.match(problems(`${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}`).join(), /nested/);
    assert.match(problems(`${'['.repeat(10_000)}${']'.repeat(10_000)}`).join(), /nested/);
    assert.match(problems(`${'['.repeat(10_000)}${']'.repeat(10_000)}`.replace(/^/, 'configdrive: 1\nx: ')).join(), /nested|not valid YAML/);
  });

  it('refuses a YAML alias bomb', () => {
    const lines = ['configdrive: 1', 'a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    assert.match(problems(lines.join('\n')).join(), /more than 100000 values/);
  });

  it('keeps __proto__ keys as data and never pollutes Object.prototype', () => {
    const found = problems('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
    assert.ok(found.some((p) => p.startsWith('__proto__: is not a known field')));
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.match(problems('<initialization><__proto__><polluted>1</polluted></__proto__></initialization>').join(), /__proto__/);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('refuses bytes that are not UTF-8', () => {
    assert.match(problems(Uint8Array.from([0x3c, 0x69, 0xff, 0xfe])).join(), /not valid UTF-8/);
  });

  it('refuses a newline in every single-line field (YAML injection stops at the edge)', () => {
    const injection = 'x\nruncmd: [reboot]';
    for (const field of ['host_name', 'domain', 'timezone', 'user_name', 'system_locale']) {
      const found = problems(JSON.stringify({ initialization: { [field]: injection } }));
      assert.ok(found.some((p) => p.startsWith(`initialization.${field}: `) && /newline|control/.test(p)), `${field}: ${found.join()}`);
    }
    assert.ok(problems(JSON.stringify({ configdrive: 1, nics: [{ name: injection }] })).some((p) => p.startsWith('nics[0].name')));
    assert.ok(problems(JSON.stringify({ configdrive: 1, instance_id: injection })).some((p) => p.startsWith('instance_id')));
  });

  it('refuses a line break inside a password, without showing it', () => {
    for (const password of ['first\nsecond', 'first\r\n', '\nleading']) {
      const found = problems({ configdrive: 1, users: [{ name: 'root', password }] });
      assert.deepEqual(found, ['users[0].password: contains a line break']);
    }
    assert.deepEqual(problems(JSON.stringify({ initialization: { root_password: 'a\nb', host_name: 'x' } })).filter((p) => p.includes('line break')).length, 1);
  });

  it('refuses a list where JSON or YAML must give one value, and takes XML\'s one-element wrapping', () => {
    assert.deepEqual(problems({ configdrive: 1, users: [{ name: 'root', password: ['myPass'] }] }), ['users[0].password: must be a single value, not a list']);
    assert.deepEqual(problems('configdrive: 1\nhostname: [web1]\n'), ['hostname: must be a single value, not a list']);
    assert.deepEqual(problems(JSON.stringify({ initialization: { root_password: ['myPass'] } })), ['initialization.root_password: must be a single value, not a list']);
    const xml = parseInitialization('<initialization><root_password>myPass</root_password></initialization>').initialization;
    assert.equal(xml.users[0]?.password?.value.reveal(), 'myPass');
  });

  it('never shows a password in errors, warnings, JSON or inspect output', () => {
    const secret = 'S3cr3t-Value';
    const parsed = parseInitialization(`<initialization><root_password>${secret}</root_password><org_name>x</org_name></initialization>`);
    for (const shown of [JSON.stringify(parsed), inspect(parsed, { depth: 20 }), parsed.warnings.join()]) assert.ok(!shown.includes(secret), shown);
    try {
      parseInitialization(`<initialization><root_password>${secret}</root_password><users><user><user_name>root</user_name><password>other-${secret}</password></user></users></initialization>`);
      assert.fail('contradicting passwords must fail');
    } catch (err) {
      assert.ok(err instanceof AgentError);
      assert.ok(!JSON.stringify({ m: err.message, p: err.problems }).includes(secret));
    }
  });

  it('never quotes a broken JSON, YAML or XML document in its parse error: the position and the parser\'s words only', () => {
    const secret = 'Hunter2-Sup3rSecret';
    const cases: [string, RegExp][] = [
      // V8's own message would quote `..."password": Hunter2-Sup3rSecret}]}`.
      [`{"configdrive": 1, "users": [{"name": "root", "password": ${secret}}]}`, /^: is not valid JSON at byte 58: unexpected character$/],
      [`{"configdrive": 1, "users": [{"name": "root", "password": "${secret}`, /^: is not valid JSON at byte \d+: unterminated string$/],
      // js-yaml names what it found: `unidentified alias "Hunter2-..."`, `unknown tag !<...>`, and shows the lines around it.
      [`configdrive: 1\nusers:\n  - name: root\n    password: *${secret}\n`, /^: is not valid YAML at line 4, column \d+: unidentified alias$/],
      [`configdrive: 1\nusers:\n  - name: root\n    password: !<${secret}> x\n`, /^: is not valid YAML at line 4, column \d+: unknown tag$/],
      [`configdrive: 1\nusers:\n  - name: root\n    password: ${secret}: [\n`, /^: is not valid YAML at line 4, column \d+: bad indentation of a mapping entry$/],
      // sax ends with the character it stopped at: `Char: H`.
      [`<initialization><root_password x=${secret}>y</root_password></initialization>`, /^: is not well-formed XML at line 1, column \d+: Unquoted attribute value$/],
    ];
    for (const [input, expected] of cases) {
      const found = problems(input);
      assert.equal(found.length, 1, found.join());
      assert.match(found[0]!, expected);
      assert.ok(!found[0]!.includes(secret.slice(0, 4)), found[0]);
    }
  });

  it('throws nothing but INVALID_INITIALIZATION for arbitrary JSON values (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        try {
          parseInitializationValue(value);
        } catch (err) {
          if (!(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION')) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but INVALID_INITIALIZATION for arbitrary oVirt-shaped documents (fast-check)', () => {
    const keys = fc.constantFrom('host_name', 'nic_configurations', 'nic_configuration', 'ip', 'users', 'user', 'files', 'file', 'cloud_init', 'name', 'content', 'type', 'netmask', 'boot_protocol', 'on_boot');
    const value = fc.letrec((tie) => ({ node: fc.oneof({ depthSize: 'small' }, fc.string(), fc.boolean(), fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(keys, tie('node'), { maxKeys: 4 })) })).node;
    fc.assert(
      fc.property(fc.dictionary(keys, value, { maxKeys: 5 }), (doc) => {
        try {
          parseInitializationValue({ initialization: doc });
        } catch (err) {
          if (!(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION')) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

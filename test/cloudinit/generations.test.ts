/**
 * Every network and user case, read by the cloud-init of each Debian release from 20.4 to
 * 26.x (read_config_drive, the schema, cc_users_groups and cc_set_passwords with their
 * commands recorded, and `net-convert` to every renderer the release has), each checked
 * against what the settings asked for. A case one release takes and another gets wrong
 * fails: the guest would end up differently depending on its image. Each case is built
 * in both drive formats: config-2, and NoCloud read by the release's DataSourceNoCloud
 * from a seed, its network-config converted by `net-convert -k yaml`.
 */
import assert from 'node:assert/strict';
import yaml from 'js-yaml';
import { buildDriveTree, DRIVE_FORMATS, firstIdentity, NOCLOUD_PATHS, USER_DATA_PATH, type BuiltDrive, type DriveFormat } from '../../src/cloudinit/index.js';
import { nicLinkPath } from '../../src/cloudinit/nic-names.js';
import type { DomainFacts } from '../../src/cloudinit/types.js';
import type { Initialization } from '../../src/initialization/types.js';
import { clearPassword, DOMAIN_UUID, facts, hashedPassword, initialization, nic, user } from '../helpers/initialization.js';
import { run } from '../helpers/tools.js';
import {
  cloudInitReleases,
  readWithRelease,
  RENDERERS,
  type GenerationView,
  type Release,
  type ReleaseFacts,
  type RendererName,
} from './cloud-init-generations.js';
import { GUEST_MACS, MAC0, MAC1, MAC2, ROOT_KEY, seedInitialization, SEED_FACTS, THREE_NICS } from './cases.js';

interface Case {
  /** Row label in the printed table. */
  readonly label: string;
  readonly init: Initialization;
  readonly facts: DomainFacts;
}

const ONE_NIC = facts({ nics: [{ mac: MAC0 }] });
const dns = { servers: ['192.0.2.53', '2001:db8::53'], search: ['example.com'] };
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGtleSBmb3IgdGVzdHM alice@example';
const SHA512_HASH = '$6$rounds=5000$abcdefgh$QkmYs8aRfpHJEHc9NbQZuxqXgN1Wm9t6Ww8bnQd3aG0Oj6Ga4JxQ7/2GHm9aqJ3n2n1QYb0sXz7d3ZP3QdW8m/';
/** Clear passwords by user name, for the openssl check of what reaches chpasswd or useradd. */
const CLEAR: Readonly<Record<string, string>> = { root: 'myPass', alice: 'correct horse battery staple' };

const CASES: readonly Case[] = [
  // The network cases of network-cases.test.ts, and the DHCP-only DNS.
  { label: 'net: static v4 + gateway by MAC', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' } })] }) },
  { label: 'net: static v6 only', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64, gateway: '2001:db8::1' } })] }) },
  { label: 'net: DHCPv4 + DHCPv6', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'dhcp' } })] }) },
  { label: 'net: SLAAC', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { ipv6: { boot: 'autoconf' } })] }) },
  { label: 'net: DHCPv6 stateless', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'dhcp+autoconf' } })] }) },
  { label: 'net: DNS on a DHCP-only NIC', facts: ONE_NIC, init: initialization({ dns, nics: [nic('eth0', { ipv4: { boot: 'dhcp' } })] }) },
  {
    label: 'net: DHCPv4 + SLAAC + DNS',
    facts: ONE_NIC,
    init: initialization({ dns, nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'autoconf' } })] }),
  },
  {
    label: 'net: DHCPv4 + static v6 + DNS',
    facts: ONE_NIC,
    init: initialization({ dns, nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64 } })] }),
  },
  { label: 'net: DNS on an IPv6-only NIC', facts: ONE_NIC, init: initialization({ dns, nics: [nic('eth0', { ipv6: { boot: 'autoconf' } })] }) },
  { label: 'net: search domain only, DHCP', facts: ONE_NIC, init: initialization({ dns: { servers: [], search: ['example.com'] }, nics: [nic('eth0', { ipv4: { boot: 'dhcp' } })] }) },
  {
    label: 'net: IPv6 DNS only, IPv4 NIC',
    facts: ONE_NIC,
    init: initialization({ dns: { servers: ['2001:db8::53'], search: ['example.com'] }, nics: [nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24 } })] }),
  },
  { label: 'net: DNS only, no NIC', facts: facts(), init: initialization({ dns }) },
  { label: 'net: NIC not on boot', facts: ONE_NIC, init: initialization({ nics: [nic('eth0', { onBoot: false, ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24 } })] }) },
  {
    label: 'net: three NICs, DNS',
    facts: THREE_NICS,
    init: initialization({
      dns,
      nics: [
        nic('eth0', { ipv4: { boot: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1' }, ipv6: { boot: 'autoconf' } }),
        nic('eth1', { ipv4: { boot: 'dhcp' } }),
        nic('data', { mac: MAC2, ipv4: { boot: 'static', address: '198.51.100.7', prefix: 25 } }),
      ],
    }),
  },
  {
    label: 'net: ENI protocol',
    facts: facts({ nics: [{ mac: MAC0 }, { mac: MAC1 }] }),
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
  },
  {
    label: 'net: ENI protocol, DHCP + DNS',
    facts: ONE_NIC,
    init: initialization({ networkProtocol: 'eni', dns, nics: [nic('eth0', { ipv4: { boot: 'dhcp' } })] }),
  },
  {
    label: 'net: ENI protocol, DHCPv4 + static v6 + DNS',
    facts: ONE_NIC,
    init: initialization({
      networkProtocol: 'eni',
      dns,
      nics: [nic('eth0', { ipv4: { boot: 'dhcp' }, ipv6: { boot: 'static', address: '2001:db8::10', prefix: 64 } })],
    }),
  },
  // The user cases of drive.test.ts.
  { label: "user: the seed's settings", facts: SEED_FACTS, init: seedInitialization() },
  {
    label: 'user: alice, password, key, sudo',
    facts: ONE_NIC,
    init: initialization({ users: [user('alice', { password: clearPassword(CLEAR['alice'] ?? ''), authorizedKeys: [OTHER_KEY], groups: ['adm', 'sudo'], sudo: true })] }),
  },
  { label: 'user: root, pre-hashed password', facts: ONE_NIC, init: initialization({ users: [user('root', { password: hashedPassword(SHA512_HASH) })] }) },
  { label: 'user: root key, no password', facts: ONE_NIC, init: initialization({ users: [user('root', { authorizedKeys: [ROOT_KEY] })] }) },
  {
    label: 'user: root and alice, passwords',
    facts: ONE_NIC,
    init: initialization({ users: [user('root', { password: clearPassword(CLEAR['root'] ?? '') }), user('alice', { password: clearPassword(CLEAR['alice'] ?? '') })] }),
  },
  { label: 'user: host name + domain', facts: ONE_NIC, init: initialization({ hostName: 'web1', domain: 'example.com' }) },
  { label: 'user: host keys kept', facts: ONE_NIC, init: initialization({ hostName: 'keep', regenerateSshKeys: false }) },
  {
    label: 'user: binary and YAML-like files',
    facts: ONE_NIC,
    init: initialization({
      files: [
        { path: '/opt/blob.bin', content: Uint8Array.from([0, 255, 1, 254, 10]), mode: 0o600, owner: 'root:root' },
        { path: '/etc/motd', content: new TextEncoder().encode('key: value\n- item\nruncmd: [reboot]\n'), mode: 0o644 },
      ],
    }),
  },
  {
    label: 'user: custom cloud-config merged',
    facts: ONE_NIC,
    init: initialization({ commands: ['echo ours'], customScript: '#cloud-config\nruncmd:\n  - echo theirs\npackages: [htop]\n' }),
  },
  { label: 'user: shell script as MIME part', facts: ONE_NIC, init: initialization({ hostName: 'scripted', customScript: '#!/bin/sh\necho hi\nexit 0\n' }) },
  {
    label: 'user: locale, commands, power state',
    facts: ONE_NIC,
    init: initialization({
      systemLocale: 'en_US.UTF-8',
      commands: ['touch /run/first-boot'],
      powerState: { mode: 'reboot', delayMinutes: 0, message: 'configured' },
      instanceId: 'iid-renewed-1',
    }),
  },
  { label: 'user: empty settings', facts: facts(), init: initialization() },
];

/**
 * Drives the instrument must find fault with on the releases named, so that a green row
 * means the release was asked and answered, not that nothing was looked at.
 */
interface Probe {
  readonly label: string;
  readonly userData: string;
  readonly expect: (view: GenerationView, release: ReleaseFacts) => string | undefined;
}

const PROBES: readonly Probe[] = [
  {
    label: 'a wrong type is a schema error on every release',
    userData: '#cloud-config\nruncmd: 5\n',
    expect: (view) => (view.schema[0]?.errors.length ? undefined : 'runcmd: 5 passed the schema'),
  },
  {
    label: 'chpasswd.list sets the password on 20.4 and is DEPRECATED from 22.3 on',
    userData: `#cloud-config\nchpasswd:\n  expire: false\n  list:\n    - root:${SHA512_HASH}\n`,
    expect: (view, release) => {
      if (!view.applied.passwords.some((p) => p.user === 'root' && p.value === SHA512_HASH)) return 'chpasswd.list did not reach chpasswd';
      const deprecated = [...(view.schema[0]?.warnings ?? []), ...view.applied.log_warnings].some((w) => /deprecat/i.test(w));
      const old = release.version.startsWith('20.');
      return deprecated === !old ? undefined : `deprecation ${deprecated ? 'reported' : 'not reported'} by ${release.version}`;
    },
  },
];

/** Where a release went wrong on a case: the user side and each renderer, separately. */
interface Verdict {
  readonly user: string[];
  /** undefined: the case has no network config; null: the release lacks the renderer. */
  readonly renderers: Partial<Record<RendererName, string[] | null>>;
  /** Settings a renderer drops that the build's warnings name (renderer, release range, setting). */
  readonly warned: Partial<Record<RendererName, string[]>>;
  readonly notes: string[];
}

function expectedMac(c: Case, index: number): string | undefined {
  return c.init.nics[index]?.mac ?? c.facts.nics[index]?.mac;
}

async function hashMatches(hash: string, userName: string, init: Initialization): Promise<boolean> {
  const password = init.users.find((u) => u.name === userName)?.password;
  if (password === undefined) return false;
  if (password.kind === 'hashed') return hash === password.value.reveal();
  const clear = CLEAR[userName];
  const m = /^\$6\$([^$]+)\$/.exec(hash);
  if (clear === undefined || m === null) return false;
  return (await run('/usr/bin/openssl', ['passwd', '-6', '-salt', m[1] ?? '', clear])).trim() === hash;
}

/**
 * What the releases' commands do to root, which every image has: its password set with
 * chpasswd when one was asked for, and nothing else. One exception: `passwd -u root`
 * after root's password was set, which 24.3 and later run for `lock_passwd: false` and
 * which leaves a crypt hash as it is (shadow 4.13's passwd only strips a leading `!`;
 * measured with `passwd -R` on a scratch root: `$6$...` unchanged, rc 0, nothing on
 * stderr). Before a password is set, the same command unlocks `!$6$...` and fails on
 * `!` (rc 3, stderr), after which cloud-init blanks the password with `passwd -d`.
 */
function rootCommandProblems(c: Case, view: GenerationView): string[] {
  const problems: string[] = [];
  const asked = c.init.users.find((u) => u.name === 'root')?.password !== undefined;
  let set = false;
  for (const { args, users } of view.applied.command_log) {
    if (args[0] === 'chpasswd') {
      if (users.includes('root')) {
        if (!asked) problems.push("root's password is set though none was asked for");
        set = true;
      }
      continue;
    }
    if (!args.includes('root')) continue;
    if (args[0] === 'passwd' && args[1] === '-u' && args.length === 3 && set) continue;
    problems.push(`runs ${args.join(' ')}${set ? ' after setting the password' : ''}`);
  }
  return problems;
}

/** The user-data side: what every release must read and apply the same way. */
async function userProblems(c: Case, built: BuiltDrive, view: GenerationView, release: ReleaseFacts): Promise<{ problems: string[]; notes: string[] }> {
  const problems: string[] = [];
  const notes: string[] = [];
  // Offline builds are the domain's first generation (src/cloudinit/drive.ts firstIdentity).
  const expectedId = firstIdentity(c.init, c.facts).instanceId;
  if (c.init.instanceId === undefined && expectedId !== `${DOMAIN_UUID}-g1`) problems.push(`first identity is ${expectedId}`);
  if (view.instance_id !== expectedId) problems.push(`instance-id is ${String(view.instance_id)}, not ${expectedId}`);
  if (built.instanceId !== expectedId) problems.push(`the drive's instance id is ${built.instanceId}`);
  if (c.init.hostName !== undefined) {
    const fqdn = c.init.domain === undefined ? c.init.hostName : `${c.init.hostName}.${c.init.domain}`;
    if (view.local_hostname !== fqdn) problems.push(`local-hostname is ${String(view.local_hostname)}, not ${fqdn}`);
    if (view.cloud_config['hostname'] !== c.init.hostName) problems.push(`hostname is ${String(view.cloud_config['hostname'])}`);
  }
  for (const [i, report] of view.schema.entries()) {
    for (const e of report.errors) problems.push(`schema error (part ${String(i)}): ${e}`);
    for (const w of report.warnings) problems.push(`schema warning (part ${String(i)}): ${w}`);
  }
  if (view.schema.length === 0) problems.push('no cloud-config part');
  if (release.schema_scope.kind === 'modules') notes.push(...Object.keys(view.cloud_config).filter((k) => !release.schema_scope.keys.includes(k)));
  for (const w of view.log_warnings) problems.push(`logged reading the drive: ${w}`);
  for (const w of view.applied.log_warnings) problems.push(`logged by users_groups/set_passwords: ${w}`);
  for (const e of view.applied.errors ?? []) problems.push(`config module failed: ${e}`);
  if (view.users.default_user !== null) problems.push(`the distro default user ${view.users.default_user} would be created`);
  const created = new Map(view.applied.created.filter((u) => typeof u['name'] === 'string').map((u) => [u['name'] as string, u]));
  for (const u of c.init.users) {
    // root exists on every image: it is handled only for a password (checked below).
    if (u.name !== 'root' && !created.has(u.name)) problems.push(`cc_users_groups does not handle user ${u.name}`);
    const keys = u.name === 'root' ? view.public_keys : ((created.get(u.name)?.['ssh_authorized_keys'] ?? []) as string[]);
    for (const key of u.authorizedKeys) if (!keys.includes(key)) problems.push(`key ${key.slice(0, 20)}… of ${u.name} is not applied`);
    if (u.password === undefined) continue;
    const candidates = [
      ...view.applied.passwords.filter((p) => p.user === u.name && p.hashed).map((p) => p.value),
      ...[created.get(u.name)?.['hashed_passwd']].filter((h): h is string => typeof h === 'string'),
    ];
    let set = false;
    for (const h of candidates) if (await hashMatches(h, u.name, c.init)) set = true;
    if (!set) {
      const how = Object.keys((view.cloud_config['chpasswd'] ?? {}) as object).join('+');
      problems.push(`password of ${u.name} is not set (chpasswd given ${how || 'nothing'}; chpasswd run: ${JSON.stringify(view.applied.passwords.map((p) => p.user))})`);
    }
    if (view.applied.expired.includes(u.name)) problems.push(`password of ${u.name} is expired at first login`);
    if (u.name !== 'root' && created.get(u.name)?.['lock_passwd'] !== false) problems.push(`password of ${u.name} is locked`);
  }
  problems.push(...rootCommandProblems(c, view));
  if (c.init.timezone !== undefined && view.cloud_config['timezone'] !== c.init.timezone) problems.push('timezone lost');
  if (c.init.systemLocale !== undefined && view.cloud_config['locale'] !== c.init.systemLocale) problems.push('locale lost');
  const runcmd = (view.cloud_config['runcmd'] ?? []) as unknown[];
  for (const cmd of c.init.commands) if (!runcmd.includes(cmd)) problems.push(`command ${cmd} lost`);
  const files = (view.cloud_config['write_files'] ?? []) as { path: string; content: string }[];
  for (const f of c.init.files) if (!files.some((w) => w.path === f.path)) problems.push(`file ${f.path} lost`);
  // The NIC names that outlive cloud-init (nic-names.ts): one .link per NIC of a domain with known MACs.
  const macs = c.facts.nics.map((n) => n.mac.toLowerCase());
  for (const n of macs.length === 0 ? [] : c.init.nics) {
    const link = files.find((w) => w.path === nicLinkPath(n.name))?.content ?? '';
    const mac = /^MACAddress=(\S+)$/m.exec(link)?.[1];
    if (!new RegExp(`^Name=${n.name}$`, 'm').test(link) || mac === undefined || !macs.includes(mac)) problems.push(`no .link naming ${n.name} by one of the domain's MACs: ${JSON.stringify(link)}`);
  }
  // The pin's exact list belongs to src/cloudinit; it must exist and name ConfigDrive first.
  const pin = files.find((f) => f.path.startsWith('/etc/cloud/cloud.cfg.d/'));
  if (!pin || !/^datasource_list: \[ ConfigDrive\b/m.test(pin.content)) problems.push('no datasource pin naming ConfigDrive first');
  return { problems, notes };
}

function filesOf(rendered: { files: Readonly<Record<string, string>> }, pattern: RegExp): string {
  return Object.entries(rendered.files)
    .filter(([path]) => pattern.test(path))
    .map(([, text]) => text)
    .join('\n');
}

/** Whether the renderer's output runs DHCPv4 on the interface, in that renderer's syntax. */
function rendersDhcp4(kind: RendererName, rendered: { files: Readonly<Record<string, string>> }, name: string): boolean {
  switch (kind) {
    case 'eni':
      return new RegExp(`^iface ${name} inet dhcp$`, 'm').test(filesOf(rendered, /interfaces/));
    case 'netplan': {
      const doc = yaml.load(filesOf(rendered, /netplan/)) as { network?: { ethernets?: Record<string, { dhcp4?: unknown }> } } | undefined;
      return doc?.network?.ethernets?.[name]?.dhcp4 === true;
    }
    case 'networkd':
      return /^DHCP=(ipv4|yes)$/m.test(filesOf(rendered, new RegExp(`-${name}\\.network$`)));
    case 'sysconfig':
      return /^BOOTPROTO=dhcp$/m.test(filesOf(rendered, new RegExp(`ifcfg-${name}$`)));
    case 'network-manager':
      return /\[ipv4\][^[]*^method=auto$/m.test(filesOf(rendered, new RegExp(`cloud-init-${name}\\.nmconnection$`)));
  }
}

/** One renderer's output against what the NICs asked for. */
function renderProblems(
  c: Case,
  kind: RendererName,
  view: GenerationView,
  release: ReleaseFacts,
  warnings: readonly RendererWarning[],
  warned: string[],
): string[] | null {
  const rendered = view.rendered?.[kind];
  if (rendered === undefined) return ['net-convert gave nothing'];
  if ('lacking' in rendered) return null;
  if ('error' in rendered) return [`net-convert failed: ${rendered.error}`];
  const problems: string[] = rendered.log_warnings.map((w) => `logged: ${w}`);
  const all = Object.values(rendered.files).join('\n');
  const lower = all.toLowerCase();
  c.init.nics.forEach((n, i) => {
    const mac = expectedMac(c, i);
    if (mac !== undefined && !lower.includes(mac.toLowerCase())) problems.push(`${n.name}: MAC ${mac} not matched`);
    for (const ip of [n.ipv4, n.ipv6]) {
      if (ip.boot !== 'static') continue;
      if (!n.onBoot) {
        if (all.includes(ip.address)) problems.push(`${n.name}: ${ip.address} configured on a NIC not on boot`);
        continue;
      }
      if (!all.includes(ip.address)) problems.push(`${n.name}: address ${ip.address} missing`);
      if (ip.gateway !== undefined && !all.includes(ip.gateway)) problems.push(`${n.name}: gateway ${ip.gateway} missing`);
    }
    if (n.onBoot && n.ipv4.boot === 'dhcp' && !rendersDhcp4(kind, rendered, n.name)) problems.push(`${n.name}: DHCPv4 not configured`);
  });
  if (c.init.nics.some((n) => n.onBoot)) {
    const items = [...c.init.dns.servers.map((s) => ({ what: `DNS server ${s}`, s })), ...c.init.dns.search.map((s) => ({ what: `DNS search ${s}`, s }))];
    const own = warnings.filter((w) => w.renderer === kind && inRange(release.version, w));
    for (const { what, s } of items) {
      const written = all.includes(s);
      const warnedBy = own.filter((w) => w.text.includes(s));
      if (!written && warnedBy.length === 0) problems.push(`${what} missing`);
      else if (!written) warned.push(`${what} not written, as the build warns`);
      // A warning that says more is lost than is lost is as wrong as a missing one.
      else if (warnedBy.length > 0) problems.push(`${what} is written, but the build warns it is not: ${warnedBy[0]?.text ?? ''}`);
    }
  }
  return problems;
}

/** A build warning saying that one renderer, from one cloud-init version on, drops a DNS setting. */
interface RendererWarning {
  readonly renderer: string;
  readonly from: readonly number[];
  readonly to?: readonly number[];
  readonly text: string;
}

/** The warnings of the form network-data.ts uses; any other warning names no renderer. */
function rendererWarnings(warnings: readonly string[]): RendererWarning[] {
  return warnings.flatMap((text) => {
    const m = /^dns: cloud-init (\d+)\.(\d+)(?: to (\d+)\.(\d+)| and later), ([a-z-]+) renderer: .+ not written \(/.exec(text);
    if (m === null) return [];
    const to = m[3] === undefined ? undefined : [Number(m[3]), Number(m[4])];
    return [{ renderer: m[5] ?? '', from: [Number(m[1]), Number(m[2])], ...(to === undefined ? {} : { to }), text }];
  });
}

/** Whether major.minor of `version` lies in [from, to] (to: that minor's every patch release). */
function inRange(version: string, w: RendererWarning): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const key = major * 1000 + minor;
  const [fMajor = 0, fMinor = 0] = w.from;
  if (key < fMajor * 1000 + fMinor) return false;
  if (w.to === undefined) return true;
  const [tMajor = 0, tMinor = 0] = w.to;
  return key <= tMajor * 1000 + tMinor;
}

/** A subnet's address without its prefix: NoCloud's v1 gives `192.0.2.10/24`, convert_net_json the address alone. */
function subnetAddress(subnet: Record<string, unknown>): unknown {
  const address = subnet['address'];
  return typeof address === 'string' ? address.split('/')[0] : address;
}

function networkProblems(c: Case, view: GenerationView): string[] {
  const problems: string[] = [];
  const config = (c.init.networkProtocol === 'eni' ? view.eni : view.network)?.config ?? [];
  if (c.init.nics.length === 0) {
    if (view.network !== undefined || view.eni !== undefined) problems.push('a network config without NICs');
    return problems;
  }
  if (config.length === 0) return ['no network config read'];
  for (const e of view.network_schema?.errors ?? []) problems.push(`network schema error: ${e}`);
  for (const w of view.network_schema?.warnings ?? []) problems.push(`network schema warning: ${w}`);
  for (const w of view.network_schema?.log_warnings ?? []) problems.push(`logged reading the network config: ${w}`);
  c.init.nics.forEach((n, i) => {
    const entry = config.find((e) => e.type === 'physical' && e.name === n.name);
    if (entry === undefined) {
      problems.push(`no interface ${n.name}`);
      return;
    }
    const mac = expectedMac(c, i);
    if (mac !== undefined && entry.mac_address !== mac) problems.push(`${n.name}: MAC ${String(entry.mac_address)}, not ${mac}`);
    const addresses = (entry.subnets ?? []).map(subnetAddress);
    for (const ip of [n.ipv4, n.ipv6]) {
      if (ip.boot === 'static' && n.onBoot && !addresses.includes(ip.address)) problems.push(`${n.name}: ${ip.address} not read`);
    }
  });
  return problems;
}

const TITLES: Record<DriveFormat, string> = {
  configdrive: 'cloudinit cases read by every cloud-init generation (Debian 11 to forky)',
  nocloud: 'cloudinit cases on a NoCloud drive, read by every cloud-init generation (Debian 11 to forky)',
};

for (const format of DRIVE_FORMATS) describe(TITLES[format], function () {
  this.timeout(300_000);
  const build = (init: Initialization, f: DomainFacts): BuiltDrive => buildDriveTree(init, f, firstIdentity(init, f), format);
  const built = CASES.map((c) => build(c.init, c.facts));
  const probeTrees = PROBES.map((p) => {
    const tree = new Map(build(initialization(), facts()).tree);
    tree.set(format === 'nocloud' ? NOCLOUD_PATHS.userData : USER_DATA_PATH, new TextEncoder().encode(p.userData));
    return tree;
  });
  const probeViews: GenerationView[][] = [];
  let releases: Release[] = [];
  const facts_: ReleaseFacts[] = [];
  const verdicts: Verdict[][] = [];
  const views: GenerationView[][] = [];

  before(async function () {
    this.timeout(900_000);
    releases = await cloudInitReleases();
    assert.deepEqual(
      releases.map((r) => r.suite),
      ['bullseye', 'bookworm', 'trixie', 'forky'],
    );
    for (const release of releases) {
      // One Python per release, one after the other: the hosts have two shared cores.
      const answer = await readWithRelease(release, [...built.map((b) => b.tree), ...probeTrees].map((tree) => ({ tree, macs: GUEST_MACS })));
      assert.ok(release.debVersion.startsWith(answer.release.version), `${release.suite}: ${release.debVersion} reports ${answer.release.version}`);
      facts_.push(answer.release);
      views.push(answer.results.slice(0, CASES.length));
      probeViews.push(answer.results.slice(CASES.length));
    }
    for (const [r, release] of facts_.entries()) {
      const row: Verdict[] = [];
      for (const [i, c] of CASES.entries()) {
        const view = views[r]?.[i];
        const drive = built[i];
        assert.ok(view !== undefined && drive !== undefined);
        if (view.error !== undefined) {
          row.push({ user: [`cloud-init could not read the drive: ${view.error}`], renderers: {}, warned: {}, notes: [] });
          continue;
        }
        const { problems, notes } = await userProblems(c, drive, view, release);
        const reader = format === 'nocloud' ? 'NoCloud' : 'ConfigDrive';
        if (view.datasource !== reader) problems.push(`read by ${String(view.datasource)}, not ${reader}`);
        const renderers: Partial<Record<RendererName, string[] | null>> = {};
        const hasNetwork = view.network !== undefined || view.eni !== undefined;
        problems.push(...networkProblems(c, view));
        const warned: Partial<Record<RendererName, string[]>> = {};
        const said = rendererWarnings(drive.warnings);
        for (const w of drive.warnings) if (/renderer/.test(w) && !said.some((x) => x.text === w)) problems.push(`a renderer warning the table cannot read: ${w}`);
        if (hasNetwork) {
          for (const kind of RENDERERS) {
            const list: string[] = [];
            renderers[kind] = renderProblems(c, kind, view, release, said, list);
            if (list.length > 0) warned[kind] = list;
          }
        }
        row.push({ user: problems, renderers, warned, notes });
      }
      verdicts.push(row);
    }
  });

  after(function () {
    if (verdicts.length === 0) return;
    const header = facts_.map((f, r) => `${releases[r]?.suite ?? '?'} ${f.version}`);
    const lines: string[] = [`${format} drives:`];
    const width = Math.max(...CASES.map((c) => c.label.length));
    lines.push(`${''.padEnd(width)}  ${header.map((h) => h.padEnd(22)).join(' ')}`);
    lines.push(`${''.padEnd(width)}  ${header.map(() => 'cfg eni npl nwd sys nm'.padEnd(22)).join(' ')}`);
    const cell = (p: string[] | null | undefined): string => (p === undefined ? ' · ' : p === null ? ' — ' : p.length === 0 ? 'ok ' : 'BAD');
    CASES.forEach((c, i) => {
      const cells = verdicts.map((row) => {
        const v = row[i];
        if (v === undefined) return '?'.padEnd(22);
        return [cell(v.user), ...RENDERERS.map((k) => (v.renderers[k]?.length === 0 && v.warned[k] !== undefined ? 'wrn' : cell(v.renderers[k])))].join(' ').padEnd(22);
      });
      lines.push(`${c.label.padEnd(width)}  ${cells.join(' ')}`);
    });
    lines.push('ok: as asked · wrn: a setting dropped, named by a build warning (listed below) · BAD: see below · —: renderer not in this release · ·: no network config on the drive');
    for (const [r, row] of verdicts.entries()) {
      const name = header[r] ?? '?';
      const lacking = RENDERERS.filter((k) => !(facts_[r]?.output_kinds ?? []).includes(k));
      if (lacking.length > 0) lines.push(`${name}: net-convert has no ${lacking.join(', ')}`);
      const unchecked = [...new Set(row.flatMap((v) => v.notes))];
      if (unchecked.length > 0) lines.push(`${name}: its schema covers only some modules; our keys it cannot validate: ${unchecked.join(', ')}`);
      row.forEach((v, i) => {
        const label = CASES[i]?.label ?? '?';
        for (const p of v.user) lines.push(`${name} | ${label} | cfg: ${p}`);
        for (const k of RENDERERS) for (const p of v.renderers[k] ?? []) lines.push(`${name} | ${label} | ${k}: ${p}`);
        for (const k of RENDERERS) for (const p of v.warned[k] ?? []) lines.push(`${name} | ${label} | ${k} (warned): ${p}`);
      });
    }
    console.log(lines.map((l) => `      ${l}`).join('\n'));
  });

  CASES.forEach((c, i) => {
    describe(c.label, () => {
      for (const suite of ['bullseye', 'bookworm', 'trixie', 'forky']) {
        it(`as ${suite}'s cloud-init reads it`, () => {
          const r = releases.findIndex((x) => x.suite === suite);
          const v = verdicts[r]?.[i];
          assert.ok(v !== undefined, `no verdict for ${suite}`);
          const problems = [...v.user, ...RENDERERS.flatMap((k) => (v.renderers[k] ?? []).map((p) => `${k}: ${p}`))];
          assert.deepEqual(problems, [], `cloud-init ${facts_[r]?.version ?? '?'} (${suite}):\n  ${problems.join('\n  ')}`);
        });
      }
      it('reads the same host name, keys and network on every release', () => {
        const seen = views.map((row) => {
          const v = row[i];
          const physical = ((c.init.networkProtocol === 'eni' ? v?.eni : v?.network)?.config ?? [])
            .filter((e) => e.type === 'physical')
            .map((e) => ({ name: e.name, mac: e.mac_address, addresses: (e.subnets ?? []).map(subnetAddress).filter((a) => a !== undefined) }));
          return { hostname: v?.local_hostname, keys: v?.public_keys, users: v?.users, physical };
        });
        for (const [r, s] of seen.entries()) assert.deepEqual(s, seen[0], `${releases[r]?.suite ?? '?'} differs from ${releases[0]?.suite ?? '?'}`);
      });
    });
  });

  PROBES.forEach((p, i) => {
    it(`finds fault where it must: ${p.label}`, () => {
      const missed = facts_.map((f, r) => {
        const view = probeViews[r]?.[i];
        return view === undefined ? `${f.version}: no answer` : view.error !== undefined ? `${f.version}: ${view.error}` : p.expect(view, f);
      });
      assert.deepEqual(missed.filter((m) => m !== undefined), []);
    });
  });

  it('reads with the releases asked for, each from its own unpacked package', () => {
    // A suite that moves on fails here, so the table's header is never stale unnoticed.
    const expected = [/^20\.4\./, /^22\.4\./, /^25\.1\./, /^26\./];
    facts_.forEach((f, r) => assert.match(f.version, expected[r] ?? /^$/, `${releases[r]?.suite ?? '?'} now has cloud-init ${f.version}`));
    for (const [r, f] of facts_.entries()) assert.ok(f.module.startsWith(releases[r]?.dir ?? '\0'), `${f.module} is not under ${String(releases[r]?.dir)}`);
    assert.ok(views.every((row) => row.some((v) => v.public_keys.includes(ROOT_KEY))), "every release reads the seed's root key");
  });
});

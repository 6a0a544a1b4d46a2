/**
 * oVirt's <initialization> (REST v4 names, and the older forms the seed uses: host/address,
 * users/user, authorized_keys, files, and the Python SDK v3 cloud_init element), from
 * XML or JSON alike. Semantics follow oVirt: root_password and authorized_ssh_keys belong
 * to user_name when it is given, otherwise to root.
 */
import yaml from 'js-yaml';
import { InitializationBuilder } from './builder.js';
import * as checks from './checks.js';
import { addFile, checkNics, dnsSearch, dnsServers, fileContent, INITIALIZATION_LIMITS as L, IPV4_BOOT, IPV6_BOOT, sshKeys, words } from './common.js';
import type { Doc, Mapping } from './doc.js';
import type { Ipv4Config, Ipv6Config, NicConfiguration } from './types.js';

const WINDOWS_ONLY = 'it only configures Windows (Sysprep), not cloud-init';
const IGNORED: Record<string, string> = {
  active_directory_ou: WINDOWS_ONLY,
  org_name: WINDOWS_ONLY,
  windows_license_key: WINDOWS_ONLY,
  input_locale: WINDOWS_ONLY,
  ui_language: WINDOWS_ONLY,
  user_locale: WINDOWS_ONLY,
  regenerate_ids: WINDOWS_ONLY,
};

const FIELDS = [
  'host_name', 'domain', 'timezone', 'user_name', 'root_password', 'authorized_ssh_keys', 'regenerate_ssh_keys',
  'dns_servers', 'dns_search', 'nic_configurations', 'custom_script', 'cloud_init_network_protocol', 'system_locale',
  // older forms, as in the seed's example
  'host', 'users', 'authorized_keys', 'files', 'cloud_init',
] as const;

const PROTOCOLS = { openstack_metadata: 'openstack', eni: 'eni' } as const;

/**
 * Unwraps `{vm: {initialization}}` or `{initialization}` and reads it. Problem paths are
 * relative to the initialization element, as oVirt names its fields
 * (`nic_configurations[1].ip.netmask`), whatever wraps it.
 */
export function readOvirt(doc: Doc, root: unknown, b: InitializationBuilder): void {
  const top = doc.fields(root, '', ['vm', 'initialization', 'cloud_init', ...FIELDS], IGNORED);
  if (top === undefined) return;
  if (top.has('vm')) {
    const vm = doc.fields(top.get('vm'), 'vm', ['initialization']);
    if (vm?.has('initialization') !== true) doc.problem('vm', 'has no initialization element');
    else readInitialization(doc, doc.fields(vm.get('initialization'), 'initialization', FIELDS, IGNORED, ''), b, '');
    return;
  }
  if (top.has('initialization')) {
    readInitialization(doc, doc.fields(top.get('initialization'), 'initialization', FIELDS, IGNORED, ''), b, '');
    return;
  }
  readInitialization(doc, top, b, '');
}

function at(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

function readInitialization(doc: Doc, f: Mapping | undefined, b: InitializationBuilder, prefix: string): void {
  if (f === undefined) return;
  const p = (key: string) => at(prefix, key);
  const text = (key: string) => doc.text(f.get(key), p(key));

  b.set('hostName', doc.check(text('host_name'), p('host_name'), checks.hostName), p('host_name'));
  b.set('domain', doc.check(text('domain'), p('domain'), checks.hostName), p('domain'));
  b.set('timezone', doc.check(text('timezone'), p('timezone'), checks.timezone), p('timezone'));
  const owner = doc.check(text('user_name'), p('user_name'), checks.userName) ?? 'root';
  if (f.has('user_name')) b.declareUser(owner);
  b.password(owner, text('root_password'), p('root_password'));
  const keys = text('authorized_ssh_keys');
  if (keys !== undefined) b.keys(owner, sshKeys(doc, [keys], p('authorized_ssh_keys')));
  b.regenerateSshKeys = doc.bool(f.get('regenerate_ssh_keys'), p('regenerate_ssh_keys'));
  dnsServers(doc, words(text('dns_servers')), p('dns_servers'), b.dnsServers);
  dnsSearch(doc, words(text('dns_search')), p('dns_search'), b.dnsSearch);
  const script = text('custom_script');
  if (script !== undefined && script.trim() !== '') b.set('customScript', script, p('custom_script'));
  const protocol = doc.choice(text('cloud_init_network_protocol'), p('cloud_init_network_protocol'), PROTOCOLS);
  if (protocol !== undefined) b.networkProtocol = protocol;
  b.set('systemLocale', doc.check(text('system_locale'), p('system_locale'), checks.locale), p('system_locale'));

  if (f.has('nic_configurations')) {
    const list = doc.fields(f.get('nic_configurations'), p('nic_configurations'), ['nic_configuration']);
    const items = doc.list(list?.get('nic_configuration'), p('nic_configurations'), L.maxNics);
    const start = b.nics.length;
    items.forEach((item, i) => {
      const nic = readNicConfiguration(doc, item, `${p('nic_configurations')}[${String(i)}]`);
      if (nic !== undefined) b.nics.push(nic);
    });
    checkNics(doc, b.nics.slice(start), (i) => `${p('nic_configurations')}[${String(i)}]`);
  }
  readHost(doc, f.get('host'), p('host'), b);
  readUsers(doc, f.get('users'), p('users'), b);
  readAuthorizedKeys(doc, f.get('authorized_keys'), p('authorized_keys'), b);
  readFiles(doc, f.get('files'), p('files'), b);
  if (f.has('cloud_init')) readCloudInit(doc, f.get('cloud_init'), p('cloud_init'), b);
}

function readHost(doc: Doc, value: unknown, path: string, b: InitializationBuilder): void {
  if (value === undefined) return;
  const host = doc.fields(value, path, ['address']);
  b.set('hostName', doc.check(doc.text(host?.get('address'), `${path}.address`), `${path}.address`, checks.hostName), `${path}.address`);
}

function readUsers(doc: Doc, value: unknown, path: string, b: InitializationBuilder): void {
  if (value === undefined) return;
  const users = doc.fields(value, path, ['user']);
  doc.list(users?.get('user'), path, L.maxUsers).forEach((item, i) => {
    const at = `${path}[${String(i)}]`;
    const u = doc.fields(item, at, ['user_name', 'password']);
    const name = doc.check(doc.text(u?.get('user_name'), `${at}.user_name`), `${at}.user_name`, checks.userName);
    if (u !== undefined && !u.has('user_name')) doc.problem(`${at}.user_name`, 'is missing');
    if (name === undefined) return;
    b.declareUser(name);
    b.password(name, doc.text(u?.get('password'), `${at}.password`), `${at}.password`);
  });
}

function readAuthorizedKeys(doc: Doc, value: unknown, path: string, b: InitializationBuilder): void {
  if (value === undefined) return;
  const list = doc.fields(value, path, ['authorized_key']);
  doc.list(list?.get('authorized_key'), path, L.maxUsers * L.maxKeysPerUser).forEach((item, i) => {
    const at = `${path}[${String(i)}]`;
    const k = doc.fields(item, at, ['user', 'key']);
    const user = doc.fields(k?.get('user'), `${at}.user`, ['user_name']);
    const name = doc.check(doc.text(user?.get('user_name'), `${at}.user.user_name`), `${at}.user.user_name`, checks.userName) ?? (k?.has('user') === true ? undefined : 'root');
    const key = doc.text(k?.get('key'), `${at}.key`);
    if (key === undefined) doc.problem(`${at}.key`, 'is missing');
    if (name !== undefined && key !== undefined) b.keys(name, sshKeys(doc, [key], `${at}.key`));
  });
}

const FILE_TYPES = { plaintext: 'plaintext', base64: 'base64' } as const;

/** A cloud-config fragment, as oVirt 3.x passed in the first file's content. */
function cloudConfigFragment(text: string): boolean {
  try {
    const v: unknown = yaml.load(text, { schema: yaml.JSON_SCHEMA });
    return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => /^[a-z_]+$/.test(k));
  } catch {
    return false;
  }
}

function readFiles(doc: Doc, value: unknown, path: string, b: InitializationBuilder): void {
  if (value === undefined) return;
  const list = doc.fields(value, path, ['file']);
  doc.list(list?.get('file'), path, L.maxFiles).forEach((item, i) => {
    const at = `${path}[${String(i)}]`;
    const f = doc.fields(item, at, ['name', 'content', 'type']);
    if (f === undefined) return;
    const name = doc.check(doc.text(f.get('name'), `${at}.name`), `${at}.name`, checks.guestPath);
    if (!f.has('name')) doc.problem(`${at}.name`, 'is missing');
    const type = doc.choice(doc.text(f.get('type'), `${at}.type`), `${at}.type`, FILE_TYPES) ?? 'plaintext';
    const raw = doc.text(f.get('content'), `${at}.content`);
    if (i === 0 && type === 'plaintext' && raw !== undefined && b.customScript === undefined && cloudConfigFragment(raw)) {
      // oVirt 3.x sent the first file's content to cloud-init as user data.
      doc.warnings.push(`${at}.content is a cloud-config fragment: merged into user data as oVirt 3.x did, not written to ${name ?? 'a file'}`);
      b.set('customScript', raw, `${at}.content`);
      return;
    }
    const content = fileContent(doc, raw, type, `${at}.content`);
    if (name !== undefined && content !== undefined) addFile(doc, b.files, { path: name, content }, at);
  });
}

function readNicConfiguration(doc: Doc, value: unknown, path: string): NicConfiguration | undefined {
  const f = doc.fields(value, path, ['name', 'on_boot', 'boot_protocol', 'ip', 'ipv6_boot_protocol', 'ipv6', 'mac']);
  if (f === undefined) return undefined;
  const name = doc.check(doc.text(f.get('name'), `${path}.name`), `${path}.name`, checks.nicName);
  if (!f.has('name')) doc.problem(`${path}.name`, 'is missing');
  const mac = doc.check(doc.text(doc.fields(f.get('mac'), `${path}.mac`, ['address'])?.get('address'), `${path}.mac.address`), `${path}.mac.address`, checks.mac);
  const ipv4 = ipv4Config(doc, doc.text(f.get('boot_protocol'), `${path}.boot_protocol`), f.get('ip'), path, 'boot_protocol', 'ip');
  const ipv6 = ipv6Config(doc, doc.text(f.get('ipv6_boot_protocol'), `${path}.ipv6_boot_protocol`), f.get('ipv6'), path, 'ipv6_boot_protocol', 'ipv6');
  // oVirt leaves on_boot out for NICs it means to use (the seed's eth1): absent is true.
  const onBoot = doc.bool(f.get('on_boot'), `${path}.on_boot`) ?? true;
  if (name === undefined || ipv4 === undefined || ipv6 === undefined) return undefined;
  return { name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6 };
}

interface IpFields {
  address?: string;
  netmask?: string;
  gateway?: string;
}

function ipFields(doc: Doc, value: unknown, path: string): IpFields | undefined {
  if (value === undefined) return {};
  const f = doc.fields(value, path, ['address', 'netmask', 'gateway', 'version']);
  if (f === undefined) return undefined;
  const out: IpFields = {};
  for (const key of ['address', 'netmask', 'gateway'] as const) {
    const v = doc.text(f.get(key), `${path}.${key}`);
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
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

function ipConfig<B extends string>(family: Family<B>, doc: Doc, protocol: string | undefined, ip: unknown, path: string, protocolKey: string, ipKey: string) {
  const boot = doc.choice(protocol, `${path}.${protocolKey}`, family.boots) ?? (protocol === undefined ? ('none' as B) : undefined);
  const fields = ipFields(doc, ip, `${path}.${ipKey}`);
  if (boot === undefined || fields === undefined) return undefined;
  if (boot !== 'static') return { boot };
  const at = (key: string) => `${path}.${ipKey}.${key}`;
  const address = doc.check(fields.address, at('address'), family.address);
  if (fields.address === undefined) doc.problem(at('address'), `is required when ${protocolKey} is static`);
  const netmask = fields.netmask ?? family.defaultPrefix;
  const prefix = netmask === undefined ? doc.problem(at('netmask'), `is required when ${protocolKey} is static`) : doc.check(netmask, at('netmask'), family.prefix);
  const gateway = doc.check(fields.gateway, at('gateway'), family.address);
  if (address === undefined || prefix === undefined) return undefined;
  return { boot: 'static' as const, address, prefix, ...(gateway === undefined ? {} : { gateway }) };
}

export function ipv4Config(doc: Doc, protocol: string | undefined, ip: unknown, path: string, protocolKey: string, ipKey: string): Ipv4Config | undefined {
  return ipConfig(IPV4, doc, protocol, ip, path, protocolKey, ipKey) as Ipv4Config | undefined;
}

export function ipv6Config(doc: Doc, protocol: string | undefined, ip: unknown, path: string, protocolKey: string, ipKey: string): Ipv6Config | undefined {
  return ipConfig(IPV6, doc, protocol, ip, path, protocolKey, ipKey) as Ipv6Config | undefined;
}

/** The Python SDK v3 shape (params.CloudInit), as in the seed's two SDK examples. */
function readCloudInit(doc: Doc, value: unknown, path: string, b: InitializationBuilder): void {
  const f = doc.fields(value, path, ['host', 'users', 'authorized_keys', 'regenerate_ssh_keys', 'timezone', 'network_configuration', 'files']);
  if (f === undefined) return;
  readHost(doc, f.get('host'), `${path}.host`, b);
  readUsers(doc, f.get('users'), `${path}.users`, b);
  readAuthorizedKeys(doc, f.get('authorized_keys'), `${path}.authorized_keys`, b);
  b.regenerateSshKeys = doc.bool(f.get('regenerate_ssh_keys'), `${path}.regenerate_ssh_keys`);
  b.set('timezone', doc.check(doc.text(f.get('timezone'), `${path}.timezone`), `${path}.timezone`, checks.timezone), `${path}.timezone`);
  readFiles(doc, f.get('files'), `${path}.files`, b);
  if (!f.has('network_configuration')) return;
  const net = doc.fields(f.get('network_configuration'), `${path}.network_configuration`, ['nics', 'dns']);
  const nicsPath = `${path}.network_configuration.nics`;
  const nics = doc.fields(net?.get('nics'), nicsPath, ['nic']);
  const start = b.nics.length;
  doc.list(nics?.get('nic'), nicsPath, L.maxNics).forEach((item, i) => {
    const at = `${nicsPath}[${String(i)}]`;
    const n = doc.fields(item, at, ['name', 'boot_protocol', 'on_boot', 'network', 'mac']);
    if (n === undefined) return;
    const name = doc.check(doc.text(n.get('name'), `${at}.name`), `${at}.name`, checks.nicName);
    if (!n.has('name')) doc.problem(`${at}.name`, 'is missing');
    const mac = doc.check(doc.text(doc.fields(n.get('mac'), `${at}.mac`, ['address'])?.get('address'), `${at}.mac.address`), `${at}.mac.address`, checks.mac);
    const network = doc.fields(n.get('network'), `${at}.network`, ['ip']);
    const ipv4 = ipv4Config(doc, doc.text(n.get('boot_protocol'), `${at}.boot_protocol`), network?.get('ip'), at, 'boot_protocol', 'network.ip');
    const onBoot = doc.bool(n.get('on_boot'), `${at}.on_boot`) ?? true;
    if (name !== undefined && ipv4 !== undefined) b.nics.push({ name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6: { boot: 'none' } });
  });
  checkNics(doc, b.nics.slice(start), (i) => `${nicsPath}[${String(i)}]`);
  const dns = doc.fields(net?.get('dns'), `${path}.network_configuration.dns`, ['servers', 'search_domains']);
  for (const [key, add] of [['servers', dnsServers], ['search_domains', dnsSearch]] as const) {
    const hostsPath = `${path}.network_configuration.dns.${key}`;
    const hosts = doc.fields(dns?.get(key), hostsPath, ['host']);
    const values = doc.list(hosts?.get('host'), hostsPath, L.maxDnsEntries).flatMap((h, i) => {
      const addr = doc.text(doc.fields(h, `${hostsPath}[${String(i)}]`, ['address'])?.get('address'), `${hostsPath}[${String(i)}].address`);
      return addr === undefined ? [] : [addr];
    });
    add(doc, values, hostsPath, key === 'servers' ? b.dnsServers : b.dnsSearch);
  }
}

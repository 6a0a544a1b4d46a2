/**
 * oVirt's older forms: the Python SDK's cloud_init element (v3's params.CloudInit, v4's
 * deprecated types.CloudInit, the same elements on the wire, except that v3 sends an
 * IP's and a MAC's fields as attributes) and the seed's host/address, users/user,
 * authorized_keys and files directly in <initialization>.
 */
import type { InitializationBuilder } from './builder.js';
import * as checks from './checks.js';
import { addNics, dnsSearch, dnsServers, fileContent, INITIALIZATION_LIMITS as L, sshKeys, type ReadNic } from './common.js';
import type { Doc, Fields, Item } from './doc.js';
import { firstFileRole } from './first-file.js';
import { ipv4Config } from './ip-config.js';

export const CLOUD_INIT_FIELDS = ['host', 'users', 'authorized_keys', 'regenerate_ssh_keys', 'timezone', 'network_configuration', 'files'] as const;
export const IP_FIELDS = ['address', 'netmask', 'gateway', 'version'] as const;

export function readHost(doc: Doc, f: Fields, b: InitializationBuilder): void {
  if (!f.has('host')) return;
  const host = f.fields('host', ['address']);
  b.set('hostName', doc.check(host.text('address'), host.at('address'), checks.hostName), host.at('address'));
}

export function readUsers(doc: Doc, users: Fields, b: InitializationBuilder): void {
  for (const { value, path } of users.list('user', L.maxUsers)) {
    const u = doc.fields(value, path, ['user_name', 'password']);
    if (!u.valid) continue;
    const name = doc.check(u.text('user_name'), u.at('user_name'), checks.userName);
    if (!u.has('user_name')) doc.problem(u.at('user_name'), 'is missing');
    if (name === undefined) continue;
    b.declareUser(name, u.path);
    b.password(name, u.text('password'), u.at('password'));
  }
}

/** Keys per user; a key without a user is root's, as oVirt has it. */
export function readAuthorizedKeys(doc: Doc, keys: Fields, b: InitializationBuilder): void {
  for (const { value, path } of keys.list('authorized_key', L.maxUsers * L.maxKeysPerUser)) {
    const k = doc.fields(value, path, ['user', 'key']);
    if (!k.valid) continue;
    const user = k.fields('user', ['user_name']);
    if (k.has('user') && user.valid && !user.has('user_name')) doc.problem(user.at('user_name'), 'is missing');
    const name = k.has('user') ? doc.check(user.text('user_name'), user.at('user_name'), checks.userName) : 'root';
    const key = k.text('key');
    if (key === undefined) doc.problem(k.at('key'), 'is missing');
    if (name !== undefined && key !== undefined) b.keys(name, sshKeys(doc, [key], k.at('key')), k.at('key'));
  }
}

const FILE_TYPES = { plaintext: 'plaintext', base64: 'base64' } as const;

/**
 * Files to write in the guest. `engineTakesFirst`: oVirt engine makes this list's first
 * file the custom script (the cloud_init element), so the caller is told when that file
 * is written instead.
 */
export function readFiles(doc: Doc, files: Fields, b: InitializationBuilder, engineTakesFirst: boolean): void {
  files.list('file', L.maxFiles).forEach(({ value, path }, i) => {
    const f = doc.fields(value, path, ['name', 'content', 'type']);
    if (!f.valid) return;
    const name = doc.check(f.text('name'), f.at('name'), checks.guestPath);
    if (!f.has('name')) doc.problem(f.at('name'), 'is missing');
    const type = doc.choice(f.text('type'), f.at('type'), FILE_TYPES) ?? 'plaintext';
    const raw = f.text('content');
    if (i === 0 && raw !== undefined && firstFileIsUserData(doc, f, { raw, type, name }, b, engineTakesFirst)) return;
    const content = fileContent(doc, raw, type, f.at('content'));
    if (name !== undefined && content !== undefined) b.addFile({ path: name, content }, path);
  });
}

/** The first file as user data (true) or, with the reason, as a file to write. */
function firstFileIsUserData(doc: Doc, f: Fields, file: { raw: string; type: 'plaintext' | 'base64'; name: string | undefined }, b: InitializationBuilder, engineTakesFirst: boolean): boolean {
  const { raw } = file;
  const role = file.type === 'base64' ? { userData: false, mapping: false, why: 'its content is BASE64' } : firstFileRole(raw);
  const at = doc.show(f.path);
  const target = file.name ?? 'its path';
  if (role.userData) {
    const script = b.origin('customScript');
    if (script !== undefined) {
      doc.problem(f.at('content'), `is cloud-config (${role.why}), which would be the user data, but ${doc.show(script)} already is: give one of them`);
      return true;
    }
    doc.warnings.push(`${at} is taken as the user data, not written to ${target}: ${role.why}, so cloud-init reads it as cloud-config`);
    b.set('customScript', raw, f.at('content'));
    return true;
  }
  if (engineTakesFirst || role.mapping) {
    doc.warnings.push(`${at} is written to ${target}, not taken as the user data: ${role.why} (oVirt engine takes a first file as the custom script; start it with #cloud-config for that)`);
  }
  return false;
}

/** The cloud_init element; its NICs carry IPv4 only, as the SDK's Nic does. */
export function readCloudInit(doc: Doc, c: Fields, b: InitializationBuilder): void {
  if (!c.valid) return;
  readHost(doc, c, b);
  readUsers(doc, c.fields('users', ['user']), b);
  readAuthorizedKeys(doc, c.fields('authorized_keys', ['authorized_key']), b);
  b.regenerate(c.bool('regenerate_ssh_keys'), c.at('regenerate_ssh_keys'));
  b.set('timezone', doc.check(c.text('timezone'), c.at('timezone'), checks.timezone), c.at('timezone'));
  readFiles(doc, c.fields('files', ['file']), b, true);
  if (!c.has('network_configuration')) return;
  const net = c.fields('network_configuration', ['nics', 'dns']);
  addNics(doc, net.fields('nics', ['nic']).list('nic', L.maxNics).flatMap((item) => readNic(doc, item) ?? []), b);
  const dns = net.fields('dns', ['servers', 'search_domains']);
  for (const [key, add] of [['servers', dnsServers], ['search_domains', dnsSearch]] as const) {
    const hosts = dns.fields(key, ['host']);
    const values = hosts.list('host', L.maxDnsEntries).flatMap(({ value, path }) => {
      const h = doc.fields(value, path, ['address']);
      const address = h.text('address');
      return address === undefined ? [] : [{ text: address, path: h.at('address') }];
    });
    add(doc, values, hosts.path, b);
  }
}

function readNic(doc: Doc, { value, path }: Item): ReadNic | undefined {
  const n = doc.fields(value, path, ['name', 'boot_protocol', 'on_boot', 'network', 'mac']);
  if (!n.valid) return undefined;
  const name = doc.check(n.text('name'), n.at('name'), checks.nicName);
  if (!n.has('name')) doc.problem(n.at('name'), 'is missing');
  const macFields = n.fields('mac', ['address']);
  const mac = doc.check(macFields.text('address'), macFields.at('address'), checks.mac);
  const network = n.fields('network', ['ip']);
  const ip = network.fields('ip', IP_FIELDS);
  const ipv4 = ipv4Config(doc, { protocol: n.text('boot_protocol'), protocolPath: n.at('boot_protocol'), protocolName: 'boot_protocol', fields: ip, netmaskKey: 'netmask' });
  const onBoot = n.bool('on_boot') ?? true;
  if (name === undefined || ipv4 === undefined) return undefined;
  return {
    nic: { name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6: { boot: 'none' } },
    from: { nic: path, name: n.at('name'), mac: macFields.has('address') ? macFields.at('address') : undefined, ipv4: network.has('ip') ? network.at('ip') : undefined },
  };
}

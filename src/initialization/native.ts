/**
 * The project's own schema (docs/initialization.md): snake_case, lists as lists, one
 * place per setting. A document is native when it starts with `configdrive: 1`.
 */
import { InitializationBuilder } from './builder.js';
import * as checks from './checks.js';
import { addFile, checkNics, dnsSearch, dnsServers, fileContent, INITIALIZATION_LIMITS as L, sshKeys } from './common.js';
import type { Doc } from './doc.js';
import { ipv4Config, ipv6Config } from './ovirt.js';

export const NATIVE_MARKER = 'configdrive';
export const NATIVE_VERSION = 1;

const FIELDS = [
  NATIVE_MARKER, 'hostname', 'domain', 'timezone', 'users', 'regenerate_ssh_keys', 'dns', 'nics', 'files',
  'custom_script', 'network_protocol', 'locale', 'runcmd', 'power_state', 'instance_id',
] as const;

const PROTOCOLS = { openstack: 'openstack', eni: 'eni' } as const;
const POWER_MODES = { poweroff: 'poweroff', reboot: 'reboot', halt: 'halt' } as const;

function strings(doc: Doc, value: unknown, path: string, max: number): string[] {
  if (value !== undefined && value !== null && !Array.isArray(value)) {
    doc.problem(path, 'must be a list');
    return [];
  }
  return doc.list(value, path, max).flatMap((v, i) => {
    const t = doc.text(v, `${path}[${String(i)}]`);
    return t === undefined ? [] : [t];
  });
}

export function readNative(doc: Doc, root: unknown, b: InitializationBuilder): void {
  const f = doc.fields(root, '', FIELDS);
  if (f === undefined) return;
  const version = f.get(NATIVE_MARKER);
  if (version !== NATIVE_VERSION) doc.problem(NATIVE_MARKER, `must be ${String(NATIVE_VERSION)} (the schema version this agent reads)`);
  const text = (key: string) => doc.text(f.get(key), key);
  b.set('hostName', doc.check(text('hostname'), 'hostname', checks.hostName), 'hostname');
  b.set('domain', doc.check(text('domain'), 'domain', checks.hostName), 'domain');
  b.set('timezone', doc.check(text('timezone'), 'timezone', checks.timezone), 'timezone');
  b.set('systemLocale', doc.check(text('locale'), 'locale', checks.locale), 'locale');
  b.set('instanceId', doc.check(text('instance_id'), 'instance_id', checks.singleLine), 'instance_id');
  const script = text('custom_script');
  if (script !== undefined && script.trim() !== '') b.set('customScript', script, 'custom_script');
  b.regenerateSshKeys = doc.bool(f.get('regenerate_ssh_keys'), 'regenerate_ssh_keys');
  b.networkProtocol = doc.choice(text('network_protocol'), 'network_protocol', PROTOCOLS) ?? 'openstack';
  b.commands.push(...strings(doc, f.get('runcmd'), 'runcmd', L.maxCommands));

  doc.list(f.get('users'), 'users', L.maxUsers).forEach((item, i) => {
    const at = `users[${String(i)}]`;
    const u = doc.fields(item, at, ['name', 'password', 'password_hash', 'ssh_authorized_keys', 'groups', 'sudo']);
    if (u === undefined) return;
    const name = doc.check(doc.text(u.get('name'), `${at}.name`), `${at}.name`, checks.userName);
    if (!u.has('name')) doc.problem(`${at}.name`, 'is missing');
    if (name === undefined) return;
    b.declareUser(name);
    if (u.has('password') && u.has('password_hash')) doc.problem(at, 'gives both password and password_hash');
    b.password(name, doc.text(u.get('password'), `${at}.password`), `${at}.password`);
    const hash = doc.text(u.get('password_hash'), `${at}.password_hash`);
    if (hash !== undefined && !/^\$[0-9a-z]+\$/.test(hash)) doc.problem(`${at}.password_hash`, 'is not a crypt(3) hash ($6$... or $y$...)');
    else b.password(name, hash, `${at}.password_hash`);
    b.keys(name, sshKeys(doc, strings(doc, u.get('ssh_authorized_keys'), `${at}.ssh_authorized_keys`, L.maxKeysPerUser), `${at}.ssh_authorized_keys`));
    const groups = strings(doc, u.get('groups'), `${at}.groups`, L.maxGroups).flatMap((g, j) => doc.check(g, `${at}.groups[${String(j)}]`, checks.groupName) ?? []);
    const sudo = doc.bool(u.get('sudo'), `${at}.sudo`) ?? false;
    if (name === 'root' && (groups.length > 0 || sudo)) doc.problem(at, 'root takes no groups or sudo');
    b.groups(name, groups, sudo);
  });

  const dns = doc.fields(f.get('dns'), 'dns', ['servers', 'search']);
  dnsServers(doc, strings(doc, dns?.get('servers'), 'dns.servers', L.maxDnsEntries), 'dns.servers', b.dnsServers);
  dnsSearch(doc, strings(doc, dns?.get('search'), 'dns.search', L.maxDnsEntries), 'dns.search', b.dnsSearch);

  doc.list(f.get('nics'), 'nics', L.maxNics).forEach((item, i) => {
    const at = `nics[${String(i)}]`;
    const n = doc.fields(item, at, ['name', 'mac', 'on_boot', 'ipv4', 'ipv6']);
    if (n === undefined) return;
    const name = doc.check(doc.text(n.get('name'), `${at}.name`), `${at}.name`, checks.nicName);
    if (!n.has('name')) doc.problem(`${at}.name`, 'is missing');
    const mac = doc.check(doc.text(n.get('mac'), `${at}.mac`), `${at}.mac`, checks.mac);
    const v4 = doc.fields(n.get('ipv4'), `${at}.ipv4`, ['boot', 'address', 'netmask', 'prefix', 'gateway']);
    const v6 = doc.fields(n.get('ipv6'), `${at}.ipv6`, ['boot', 'address', 'prefix', 'gateway']);
    if (v4?.has('netmask') === true && v4.has('prefix')) doc.problem(`${at}.ipv4`, 'gives both netmask and prefix');
    const ip4 = { address: v4?.get('address'), netmask: v4?.get('netmask') ?? v4?.get('prefix'), gateway: v4?.get('gateway') };
    const ip6 = { address: v6?.get('address'), netmask: v6?.get('prefix'), gateway: v6?.get('gateway') };
    const ipv4 = ipv4Config(doc, doc.text(v4?.get('boot'), `${at}.ipv4.boot`), defined(ip4), at, 'ipv4.boot', 'ipv4');
    const ipv6 = ipv6Config(doc, doc.text(v6?.get('boot'), `${at}.ipv6.boot`), defined(ip6), at, 'ipv6.boot', 'ipv6');
    const onBoot = doc.bool(n.get('on_boot'), `${at}.on_boot`) ?? true;
    if (name !== undefined && ipv4 !== undefined && ipv6 !== undefined) b.nics.push({ name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6 });
  });
  checkNics(doc, b.nics, (i) => `nics[${String(i)}]`);

  doc.list(f.get('files'), 'files', L.maxFiles).forEach((item, i) => {
    const at = `files[${String(i)}]`;
    const x = doc.fields(item, at, ['path', 'content', 'content_base64', 'mode', 'owner']);
    if (x === undefined) return;
    const path = doc.check(doc.text(x.get('path'), `${at}.path`), `${at}.path`, checks.guestPath);
    if (!x.has('path')) doc.problem(`${at}.path`, 'is missing');
    if (x.has('content') === x.has('content_base64')) doc.problem(at, 'needs exactly one of content and content_base64');
    const content = x.has('content_base64')
      ? fileContent(doc, doc.text(x.get('content_base64'), `${at}.content_base64`), 'base64', `${at}.content_base64`)
      : fileContent(doc, doc.text(x.get('content'), `${at}.content`) ?? '', 'plaintext', `${at}.content`);
    const modeText = doc.text(x.get('mode'), `${at}.mode`);
    // YAML 1.2 reads 0644 as the decimal 644; a mode is always taken as octal digits.
    const mode = modeText === undefined ? undefined : /^0?[0-7]{3,4}$/.test(modeText) ? parseInt(modeText, 8) : doc.problem(`${at}.mode`, `${JSON.stringify(modeText)} is not an octal mode such as "0644"`);
    const owner = doc.text(x.get('owner'), `${at}.owner`);
    if (owner !== undefined && !/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/.test(owner)) doc.problem(`${at}.owner`, `${JSON.stringify(owner.slice(0, 40))} is not user or user:group`);
    if (path !== undefined && content !== undefined) addFile(doc, b.files, { path, content, ...(mode === undefined ? {} : { mode }), ...(owner === undefined ? {} : { owner }) }, at);
  });

  const power = doc.fields(f.get('power_state'), 'power_state', ['mode', 'delay', 'message']);
  if (power !== undefined && f.has('power_state')) {
    const mode = doc.choice(doc.text(power.get('mode'), 'power_state.mode'), 'power_state.mode', POWER_MODES);
    if (!power.has('mode')) doc.problem('power_state.mode', 'is missing');
    const delayText = doc.text(power.get('delay'), 'power_state.delay') ?? '0';
    const delay = /^\d{1,4}$/.test(delayText) ? Number(delayText) : doc.problem('power_state.delay', 'must be a number of minutes (0-9999)');
    const message = doc.check(doc.text(power.get('message'), 'power_state.message'), 'power_state.message', checks.singleLine);
    if (mode !== undefined && delay !== undefined) b.powerState = { mode, delayMinutes: delay, ...(message === undefined ? {} : { message }) };
  }
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

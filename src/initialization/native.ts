/**
 * The project's own schema (docs/initialization.md): snake_case, lists as lists, one
 * place per setting. A document is native when it starts with `configdrive: 1`.
 */
import type { InitializationBuilder } from './builder.js';
import * as checks from './checks.js';
import { addNics, dnsSearch, dnsServers, fileContent, INITIALIZATION_LIMITS as L, sshKeys, type ReadNic } from './common.js';
import type { Doc, Fields } from './doc.js';
import { ipv4Config, ipv6Config } from './ip-config.js';
import { SourcePath } from './source-path.js';

export const NATIVE_MARKER = 'configdrive';
export const NATIVE_VERSION = 1;

const FIELDS = [
  NATIVE_MARKER, 'hostname', 'domain', 'timezone', 'users', 'regenerate_ssh_keys', 'dns', 'nics', 'files',
  'custom_script', 'network_protocol', 'locale', 'runcmd', 'power_state', 'instance_id',
] as const;

const PROTOCOLS = { openstack: 'openstack', eni: 'eni' } as const;
const POWER_MODES = { poweroff: 'poweroff', reboot: 'reboot', halt: 'halt' } as const;

/** A list of strings, each with its path. */
function strings(doc: Doc, f: Fields, key: string, max: number): { text: string; path: SourcePath }[] {
  const value = f.value(key);
  if (value !== undefined && value !== null && !Array.isArray(value)) {
    doc.problem(f.at(key), 'must be a list');
    return [];
  }
  return f.list(key, max).flatMap(({ value: v, path }) => {
    const text = doc.text(v, path);
    return text === undefined ? [] : [{ text, path }];
  });
}

export function readNative(doc: Doc, root: unknown, b: InitializationBuilder): void {
  const f = doc.fields(root, SourcePath.ROOT, FIELDS);
  if (!f.valid) return;
  if (f.value(NATIVE_MARKER) !== NATIVE_VERSION) doc.problem(f.at(NATIVE_MARKER), `must be ${String(NATIVE_VERSION)} (the schema version this agent reads)`);
  const single = (key: string, field: 'hostName' | 'domain' | 'timezone' | 'systemLocale' | 'instanceId', check: (v: string) => checks.Checked<string>) =>
    b.set(field, doc.check(f.text(key), f.at(key), check), f.at(key));
  single('hostname', 'hostName', checks.hostName);
  single('domain', 'domain', checks.hostName);
  single('timezone', 'timezone', checks.timezone);
  single('locale', 'systemLocale', checks.locale);
  single('instance_id', 'instanceId', checks.singleLine);
  const script = f.text('custom_script');
  if (script !== undefined && script.trim() !== '') b.set('customScript', script, f.at('custom_script'));
  b.regenerate(f.bool('regenerate_ssh_keys'), f.at('regenerate_ssh_keys'));
  b.networkProtocol = doc.choice(f.text('network_protocol'), f.at('network_protocol'), PROTOCOLS) ?? 'openstack';
  const commands = strings(doc, f, 'runcmd', L.maxCommands);
  b.commands.push(...commands.map((c) => c.text));
  if (commands.length > 0) b.sources.set('runcmd', f.at('runcmd'));

  for (const { value, path } of f.list('users', L.maxUsers)) readUser(doc, doc.fields(value, path, ['name', 'password', 'password_hash', 'ssh_authorized_keys', 'groups', 'sudo']), b);

  const dns = f.fields('dns', ['servers', 'search']);
  dnsServers(doc, strings(doc, dns, 'servers', L.maxDnsEntries), dns.at('servers'), b);
  dnsSearch(doc, strings(doc, dns, 'search', L.maxDnsEntries), dns.at('search'), b);

  const nics: ReadNic[] = [];
  for (const { value, path } of f.list('nics', L.maxNics)) {
    const read = readNic(doc, doc.fields(value, path, ['name', 'mac', 'on_boot', 'ipv4', 'ipv6']));
    if (read !== undefined) nics.push(read);
  }
  addNics(doc, nics, b);

  for (const { value, path } of f.list('files', L.maxFiles)) readFile(doc, doc.fields(value, path, ['path', 'content', 'content_base64', 'mode', 'owner']), b);

  if (f.has('power_state')) readPowerState(doc, f.fields('power_state', ['mode', 'delay', 'message']), b);
}

function readUser(doc: Doc, u: Fields, b: InitializationBuilder): void {
  if (!u.valid) return;
  const name = doc.check(u.text('name'), u.at('name'), checks.userName);
  if (!u.has('name')) doc.problem(u.at('name'), 'is missing');
  if (name === undefined) return;
  b.declareUser(name, u.path);
  if (u.has('password') && u.has('password_hash')) doc.problem(u.path, 'gives both password and password_hash');
  b.password(name, u.text('password'), u.at('password'));
  const hash = u.text('password_hash');
  if (hash !== undefined && !/^\$[0-9a-z]+\$/.test(hash)) doc.problem(u.at('password_hash'), 'is not a crypt(3) hash ($6$... or $y$...)');
  else b.password(name, hash, u.at('password_hash'));
  const keys = strings(doc, u, 'ssh_authorized_keys', L.maxKeysPerUser).map((k) => k.text);
  b.keys(name, sshKeys(doc, keys, u.at('ssh_authorized_keys')), u.at('ssh_authorized_keys'));
  const groups = strings(doc, u, 'groups', L.maxGroups).flatMap((g) => doc.check(g.text, g.path, checks.groupName) ?? []);
  const sudo = u.bool('sudo') ?? false;
  if (name === 'root' && (groups.length > 0 || sudo)) doc.problem(u.path, 'root takes no groups or sudo');
  b.groups(name, groups, sudo, u.path);
}

function readNic(doc: Doc, n: Fields): ReadNic | undefined {
  if (!n.valid) return undefined;
  const name = doc.check(n.text('name'), n.at('name'), checks.nicName);
  if (!n.has('name')) doc.problem(n.at('name'), 'is missing');
  const mac = doc.check(n.text('mac'), n.at('mac'), checks.mac);
  const v4 = n.fields('ipv4', ['boot', 'address', 'netmask', 'prefix', 'gateway']);
  const v6 = n.fields('ipv6', ['boot', 'address', 'prefix', 'gateway']);
  if (v4.has('netmask') && v4.has('prefix')) doc.problem(v4.path, 'gives both netmask and prefix');
  const ipv4 = ipv4Config(doc, { protocol: v4.text('boot'), protocolPath: v4.at('boot'), protocolName: 'ipv4.boot', fields: v4, netmaskKey: v4.has('prefix') ? 'prefix' : 'netmask' });
  const ipv6 = ipv6Config(doc, { protocol: v6.text('boot'), protocolPath: v6.at('boot'), protocolName: 'ipv6.boot', fields: v6, netmaskKey: 'prefix' });
  const onBoot = n.bool('on_boot') ?? true;
  if (name === undefined || ipv4 === undefined || ipv6 === undefined) return undefined;
  return {
    nic: { name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6 },
    from: { nic: n.path, name: n.at('name'), mac: n.has('mac') ? n.at('mac') : undefined, ipv4: n.has('ipv4') ? n.at('ipv4') : undefined, ipv6: n.has('ipv6') ? n.at('ipv6') : undefined },
  };
}

function readFile(doc: Doc, x: Fields, b: InitializationBuilder): void {
  if (!x.valid) return;
  const path = doc.check(x.text('path'), x.at('path'), checks.guestPath);
  if (!x.has('path')) doc.problem(x.at('path'), 'is missing');
  if (x.has('content') === x.has('content_base64')) doc.problem(x.path, 'needs exactly one of content and content_base64');
  const content = x.has('content_base64')
    ? fileContent(doc, x.text('content_base64'), 'base64', x.at('content_base64'))
    : fileContent(doc, x.text('content') ?? '', 'plaintext', x.at('content'));
  const modeText = x.text('mode');
  // YAML 1.2 reads 0644 as the decimal 644; a mode is always taken as octal digits.
  const mode = modeText === undefined ? undefined : /^0?[0-7]{3,4}$/.test(modeText) ? parseInt(modeText, 8) : doc.problem(x.at('mode'), `${JSON.stringify(modeText)} is not an octal mode such as "0644"`);
  const owner = x.text('owner');
  if (owner !== undefined && !/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/.test(owner)) doc.problem(x.at('owner'), `${JSON.stringify(owner.slice(0, 40))} is not user or user:group`);
  if (path !== undefined && content !== undefined) b.addFile({ path, content, ...(mode === undefined ? {} : { mode }), ...(owner === undefined ? {} : { owner }) }, x.path);
}

function readPowerState(doc: Doc, power: Fields, b: InitializationBuilder): void {
  if (!power.valid) return;
  const mode = doc.choice(power.text('mode'), power.at('mode'), POWER_MODES);
  if (!power.has('mode')) doc.problem(power.at('mode'), 'is missing');
  const delayText = power.text('delay') ?? '0';
  const delay = /^\d{1,4}$/.test(delayText) ? Number(delayText) : doc.problem(power.at('delay'), 'must be a number of minutes (0-9999)');
  const message = doc.check(power.text('message'), power.at('message'), checks.singleLine);
  if (mode === undefined || delay === undefined) return;
  b.powerState = { mode, delayMinutes: delay, ...(message === undefined ? {} : { message }) };
  b.sources.set('power_state', power.path);
}

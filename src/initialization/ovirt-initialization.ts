/**
 * oVirt's <initialization>: the REST v4 fields (the Python SDK v4's types.Initialization),
 * with the older forms inside it (ovirt-cloud-init.ts). Semantics follow oVirt:
 * root_password and authorized_ssh_keys belong to user_name when it is given, otherwise
 * to root.
 */
import type { InitializationBuilder } from './builder.js';
import * as checks from './checks.js';
import { addNics, dnsSearch, dnsServers, INITIALIZATION_LIMITS as L, sshKeys, wordsAt, type ReadNic } from './common.js';
import type { Doc, Fields, Item } from './doc.js';
import { ipv4Config, ipv6Config } from './ip-config.js';
import { CLOUD_INIT_FIELDS, IP_FIELDS, readAuthorizedKeys, readCloudInit, readFiles, readHost, readUsers } from './ovirt-cloud-init.js';

const WINDOWS_ONLY = 'it only configures Windows (Sysprep), not cloud-init';

/** Fields of oVirt's Initialization that are not cloud-init's: accepted, with a warning. */
export const INITIALIZATION_IGNORED: Readonly<Record<string, string>> = {
  active_directory_ou: WINDOWS_ONLY,
  org_name: WINDOWS_ONLY,
  windows_license_key: WINDOWS_ONLY,
  input_locale: WINDOWS_ONLY,
  ui_language: WINDOWS_ONLY,
  user_locale: WINDOWS_ONLY,
  regenerate_ids: WINDOWS_ONLY,
  configuration: 'it describes a VM to import (an OVF), not its first boot',
};

export const INITIALIZATION_FIELDS = [
  'host_name', 'domain', 'timezone', 'user_name', 'root_password', 'authorized_ssh_keys', 'regenerate_ssh_keys',
  'dns_servers', 'dns_search', 'nic_configurations', 'custom_script', 'cloud_init_network_protocol', 'system_locale',
  // older forms, as in the seed's example
  'host', 'users', 'authorized_keys', 'files', 'cloud_init',
] as const;

const PROTOCOLS = { openstack_metadata: 'openstack', eni: 'eni' } as const;
const NIC_FIELDS = ['name', 'on_boot', 'boot_protocol', 'ip', 'ipv6_boot_protocol', 'ipv6', 'mac'] as const;

export function readInitialization(doc: Doc, f: Fields, b: InitializationBuilder): void {
  if (!f.valid) return;
  const single = (key: string, field: 'hostName' | 'domain' | 'timezone' | 'systemLocale', check: (v: string) => checks.Checked<string>) =>
    b.set(field, doc.check(f.text(key), f.at(key), check), f.at(key));
  single('host_name', 'hostName', checks.hostName);
  single('domain', 'domain', checks.hostName);
  single('timezone', 'timezone', checks.timezone);
  single('system_locale', 'systemLocale', checks.locale);
  const owner = doc.check(f.text('user_name'), f.at('user_name'), checks.userName) ?? 'root';
  if (f.has('user_name')) b.declareUser(owner, f.at('user_name'));
  b.password(owner, f.text('root_password'), f.at('root_password'));
  const keys = f.text('authorized_ssh_keys');
  if (keys !== undefined) b.keys(owner, sshKeys(doc, [keys], f.at('authorized_ssh_keys')), f.at('authorized_ssh_keys'));
  b.regenerate(f.bool('regenerate_ssh_keys'), f.at('regenerate_ssh_keys'));
  dnsServers(doc, wordsAt(f.text('dns_servers'), f.at('dns_servers')), f.at('dns_servers'), b);
  dnsSearch(doc, wordsAt(f.text('dns_search'), f.at('dns_search')), f.at('dns_search'), b);
  const script = f.text('custom_script');
  if (script !== undefined && script.trim() !== '') b.set('customScript', script, f.at('custom_script'));
  const protocol = doc.choice(f.text('cloud_init_network_protocol'), f.at('cloud_init_network_protocol'), PROTOCOLS);
  if (protocol !== undefined) {
    b.networkProtocol = protocol;
    b.sources.set('network_protocol', f.at('cloud_init_network_protocol'));
  }
  const nics = f.fields('nic_configurations', ['nic_configuration']).list('nic_configuration', L.maxNics);
  addNics(doc, nics.flatMap((item) => readNicConfiguration(doc, item) ?? []), b);
  readHost(doc, f, b);
  readUsers(doc, f.fields('users', ['user']), b);
  readAuthorizedKeys(doc, f.fields('authorized_keys', ['authorized_key']), b);
  readFiles(doc, f.fields('files', ['file']), b, false);
  if (f.has('cloud_init')) readCloudInit(doc, f.fields('cloud_init', CLOUD_INIT_FIELDS), b);
}

function readNicConfiguration(doc: Doc, { value, path }: Item): ReadNic | undefined {
  const f = doc.fields(value, path, NIC_FIELDS);
  if (!f.valid) return undefined;
  const name = doc.check(f.text('name'), f.at('name'), checks.nicName);
  if (!f.has('name')) doc.problem(f.at('name'), 'is missing');
  const macFields = f.fields('mac', ['address']);
  const mac = doc.check(macFields.text('address'), macFields.at('address'), checks.mac);
  const ip = f.fields('ip', IP_FIELDS);
  const ipv6Fields = f.fields('ipv6', IP_FIELDS);
  const ipv4 = ipv4Config(doc, { protocol: f.text('boot_protocol'), protocolPath: f.at('boot_protocol'), protocolName: 'boot_protocol', fields: ip, netmaskKey: 'netmask' });
  const ipv6 = ipv6Config(doc, { protocol: f.text('ipv6_boot_protocol'), protocolPath: f.at('ipv6_boot_protocol'), protocolName: 'ipv6_boot_protocol', fields: ipv6Fields, netmaskKey: 'netmask' });
  // oVirt leaves on_boot out for NICs it means to use (the seed's eth1): absent is true.
  const onBoot = f.bool('on_boot') ?? true;
  if (name === undefined || ipv4 === undefined || ipv6 === undefined) return undefined;
  return {
    nic: { name, ...(mac === undefined ? {} : { mac }), onBoot, ipv4, ipv6 },
    from: {
      nic: path,
      name: f.at('name'),
      mac: macFields.has('address') ? macFields.at('address') : undefined,
      ipv4: f.has('ip') ? f.at('ip') : undefined,
      ipv6: f.has('ipv6') ? f.at('ipv6') : undefined,
    },
  };
}

/**
 * The guest matrix's checks (issue 13): each boot's report judged setting by setting, so
 * that one wrong setting on one guest is one failed cell of the table, not the end of
 * that guest's run. A check is a name and whether the guest shows it; the detail is what
 * the guest showed instead.
 */
import type { GuestFacts } from './harness.js';
import { addrs, cdromLabels, disabledByGenerator, findLinkByMac, pathContent, resolver, shadowVerifies, systemUsers } from './guest-facts.js';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const check = (name: string, ok: boolean, detail = ''): Check => ({ name, ok, detail: ok ? '' : detail });

/** What the matrix asks of every guest (test/e2e/fixtures/guest.xml plus a locale). */
export interface Expected {
  readonly instanceId: string;
  readonly hostname: string;
  readonly rootPassword: string;
  readonly alicePassword: string;
  readonly rootKeys: readonly string[];
  readonly aliceKey: string;
  readonly timezone: string;
  readonly locale: string;
  readonly dnsServers: readonly string[];
  readonly dnsSearch: readonly string[];
  /** The NICs' MACs in order: static, DHCP, SLAAC. */
  readonly macs: readonly [string, string, string];
  readonly address4: string;
  readonly gateway4: string;
  readonly address6: string;
  readonly gateway6: string;
  readonly files: Readonly<Record<string, string>>;
  readonly imageHostKeys: ReadonlyMap<string, string>;
}

const cidrs = (f: GuestFacts, mac: string, family: 'inet' | 'inet6') => addrs(f, mac, family).map((a) => `${a.local}/${String(a.prefixlen)}`);

/** cloud-init ran to the end with no warning, deprecation or failed unit: every boot it runs. */
export function cleanRun(f: GuestFacts): Check[] {
  return [
    check('cloud-init done', /status: done/.test(f.cloud_init_status.out), f.cloud_init_status.out + f.cloud_init_status.err),
    check('no WARNING/DEPRECATED in cloud-init.log', f.cloud_init_warnings.length === 0, f.cloud_init_warnings.slice(0, 5).join(' | ')),
    check('no failed unit', f.failed_units.trim() === '', f.failed_units.trim()),
  ];
}

/** The static NIC: found by MAC, named as asked, its address and the default route through it. */
export function staticAddress4(f: GuestFacts, e: Expected, address: string): Check[] {
  const [m0] = e.macs;
  const link = findLinkByMac(f, m0);
  return [
    check('NIC by MAC named eth0', link?.ifname === 'eth0', JSON.stringify(f.addresses.map((l) => [l.ifname, l.address]))),
    check('static IPv4', JSON.stringify(cidrs(f, m0, 'inet')) === JSON.stringify([address]), JSON.stringify(cidrs(f, m0, 'inet'))),
    check(
      'IPv4 default route',
      f.routes4.some((r) => r.dst === 'default' && r.gateway === e.gateway4 && r.dev === link?.ifname),
      JSON.stringify(f.routes4.filter((r) => r.dst === 'default')),
    ),
  ];
}

export async function firstBoot(f: GuestFacts, e: Expected): Promise<Check[]> {
  const [m0, m1, m2] = e.macs;
  const dns = resolver(f);
  const dhcp = addrs(f, m1, 'inet');
  const slaac = addrs(f, m2, 'inet6');
  const rootKeys = (f.authorized_keys['root'] ?? '').split('\n');
  const v6 = cidrs(f, m0, 'inet6');
  return [
    check('report', f.error === undefined, f.error ?? ''),
    ...cleanRun(f),
    check('instance-id g1', f.instance_id === e.instanceId, f.instance_id),
    check('host name', f.hostname === e.hostname && f.etc_hostname === e.hostname, `${f.hostname} / ${f.etc_hostname}`),
    check('root password', await shadowVerifies(f, 'root', e.rootPassword), (f.shadow.split('\n').find((l) => l.startsWith('root:')) ?? '').slice(0, 20)),
    check('alice password', await shadowVerifies(f, 'alice', e.alicePassword), (f.shadow.split('\n').find((l) => l.startsWith('alice:')) ?? '').slice(0, 20)),
    check('root keys', e.rootKeys.every((k) => rootKeys.includes(k)), f.authorized_keys['root'] ?? '(none)'),
    check("alice's key", (f.authorized_keys['alice'] ?? '').split('\n').includes(e.aliceKey), f.authorized_keys['alice'] ?? '(none)'),
    check('no default user', JSON.stringify(systemUsers(f)) === JSON.stringify(['alice']), JSON.stringify(systemUsers(f))),
    check(
      'host keys regenerated',
      Object.keys(f.host_keys).length >= 3 && [...e.imageHostKeys].every(([name, key]) => f.host_keys[name] !== key),
      Object.keys(f.host_keys).join(' '),
    ),
    check('time zone', f.timezone === e.timezone && f.localtime.endsWith(`/${e.timezone}`), `${f.timezone} ${f.localtime}`),
    check(
      'locale',
      new RegExp(`^LANG=${e.locale.replace('.', '\\.')}$`, 'm').test(`${f.default_locale ?? ''}\n${f.locale_conf ?? ''}`),
      `${f.default_locale ?? ''}${f.locale_conf ?? ''}`,
    ),
    check(
      'DNS servers in the resolver',
      e.dnsServers.every((s) => dns.servers.includes(s)),
      `${dns.kind}: ${dns.servers.join(' ')}`,
    ),
    check('DNS search in the resolver', e.dnsSearch.every((s) => dns.search.includes(s)), `${dns.kind}: ${dns.search.join(' ')}`),
    ...staticAddress4(f, e, e.address4),
    check('static IPv6', JSON.stringify(v6) === JSON.stringify([e.address6]), JSON.stringify(v6)),
    check(
      'IPv6 default route',
      f.routes6.some((r) => r.dst === 'default' && r.gateway === e.gateway6 && r.dev === findLinkByMac(f, m0)?.ifname),
      JSON.stringify(f.routes6.filter((r) => r.dst === 'default')),
    ),
    check(
      'DHCP lease',
      findLinkByMac(f, m1)?.ifname === 'eth1' && dhcp.length === 1 && /^10\.0\.2\.\d+$/.test(dhcp[0]?.local ?? '') && dhcp[0]?.dynamic === true,
      `${findLinkByMac(f, m1)?.ifname ?? '-'} ${JSON.stringify(dhcp)}`,
    ),
    check(
      'SLAAC',
      findLinkByMac(f, m2)?.ifname === 'eth2' && addrs(f, m2, 'inet').length === 0 && slaac.some((a) => a.local.startsWith('fec0::') && a.prefixlen === 64),
      `${findLinkByMac(f, m2)?.ifname ?? '-'} ${JSON.stringify([...addrs(f, m2, 'inet'), ...slaac])}`,
    ),
    ...Object.entries(e.files).map(([path, content]) => check(`file ${path}`, pathContent(f, path) === content, JSON.stringify(pathContent(f, path)))),
    check('one CD-ROM, config-2', JSON.stringify(cdromLabels(f)) === '["config-2"]', JSON.stringify(cdromLabels(f))),
  ];
}

/** What a boot after the first must leave as the first one made it. */
function kept(f: GuestFacts, first: GuestFacts, what: 'instance' | 'all'): Check[] {
  return [
    check('host keys kept', JSON.stringify(f.host_keys) === JSON.stringify(first.host_keys), 'changed'),
    check('users kept', f.passwd === first.passwd, JSON.stringify(systemUsers(f))),
    ...(what === 'all'
      ? [
          check('instance kept', f.instance_id === first.instance_id, f.instance_id),
          check('network files kept', JSON.stringify(f.network_files) === JSON.stringify(first.network_files), JSON.stringify(f.network_files)),
          check('host name kept', f.hostname === first.hostname, f.hostname),
        ]
      : []),
  ];
}

/** R2: the same drive again; cloud-init reads it, finds the same instance and re-runs nothing. */
export function sameDrive(f: GuestFacts, first: GuestFacts): Check[] {
  return [
    check('report', f.error === undefined, f.error ?? ''),
    ...cleanRun(f),
    check('ds-identify found ConfigDrive', /DSLIST=ConfigDrive NoCloud/.test(f.ds_identify_log ?? '') && /check for 'ConfigDrive' returned found/.test(f.ds_identify_log ?? ''), ''),
    check(
      'same instance (new=False)',
      f.lifecycle_log.some((l) => /init will now be targeting instance id: \S+-g1\. new=False/.test(l)),
      f.lifecycle_log.filter((l) => /new=/.test(l)).join(' | '),
    ),
    ...kept(f, first, 'all'),
  ];
}

/** R3: no drive; ds-identify disables cloud-init, and the guest runs on as configured. */
export function noDrive(f: GuestFacts, first: GuestFacts, e: Expected): Check[] {
  return [
    check('report', f.error === undefined, f.error ?? ''),
    check('no CD-ROM', Object.keys(f.cdroms).length === 0, JSON.stringify(cdromLabels(f))),
    check('cloud-init disabled by the generator', disabledByGenerator(f), `${f.cloud_init_status.out.split('\n')[0] ?? ''}; ran: ${String(f.cloud_init_ran)}`),
    check('no iid-datasource-none', f.instance_id === first.instance_id && !f.lifecycle_log.some((l) => l.includes('iid-datasource-none')), f.instance_id),
    ...kept(f, first, 'all'),
    check('no default user', JSON.stringify(systemUsers(f)) === JSON.stringify(['alice']), JSON.stringify(systemUsers(f))),
    ...staticAddress4(f, e, e.address4),
    check('no failed unit', f.failed_units.trim() === '', f.failed_units.trim()),
  ];
}

/** R4: a drive of new settings (generation 2) applied; host keys kept. */
export async function generation2(f: GuestFacts, first: GuestFacts, e: Expected, g2: { instanceId: string; hostname: string; rootPassword: string; address4: string }): Promise<Check[]> {
  return [
    check('report', f.error === undefined, f.error ?? ''),
    ...cleanRun(f),
    check('instance-id g2', f.instance_id === g2.instanceId, f.instance_id),
    check(
      'new instance after g1',
      f.lifecycle_log.some((l) => l.includes(`previous iid found to be ${e.instanceId}`)) && f.lifecycle_log.some((l) => /targeting instance id: \S+-g2\. new=True/.test(l)),
      f.lifecycle_log.filter((l) => /new=|previous iid/.test(l)).join(' | '),
    ),
    check('new host name', f.hostname === g2.hostname, f.hostname),
    check('new root password', await shadowVerifies(f, 'root', g2.rootPassword), ''),
    ...staticAddress4(f, e, g2.address4).map((c) => (c.name === 'static IPv4' ? { ...c, name: 'new static IPv4' } : c)),
    check('host keys kept', JSON.stringify(f.host_keys) === JSON.stringify(first.host_keys), 'changed'),
  ];
}

/**
 * What the host heard over the agent's channel from this boot (VM.initialized, issue 14):
 * one `done` for the drive's instance, or nothing on a boot without the drive.
 */
export function initialized(reports: readonly Record<string, unknown>[], f: GuestFacts, instanceId: string | null): Check {
  const mine = reports.filter((r) => r['bootId'] === f.boot_id);
  if (instanceId === null) return check('VM.initialized: nothing from a drive-less boot', mine.length === 0, JSON.stringify(mine));
  const ok = mine.length === 1 && mine[0]!['status'] === 'done' && mine[0]!['instanceId'] === instanceId;
  return check(`VM.initialized: done for this boot's instance`, ok, JSON.stringify(mine));
}

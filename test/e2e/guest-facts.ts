/**
 * Readings of a guest's report (test/e2e/guest/report.py) shared by the Debian 12 suite
 * and the guest matrix: what a fact means is decided here, once, for every guest.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import type { GuestFacts } from './harness.js';

/** True when `password` hashes to the shadow entry of `user` (SHA-512 crypt, openssl's reading). */
export async function shadowVerifies(facts: GuestFacts, user: string, password: string): Promise<boolean> {
  const hash = facts.shadow.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':')[1] ?? '';
  const salt = /^\$6\$([^$]+)\$/.exec(hash)?.[1];
  if (salt === undefined) return false;
  const { stdout } = await execa('openssl', ['passwd', '-6', '-salt', salt, '--stdin'], { input: password });
  return stdout.trim() === hash;
}

export const findLinkByMac = (f: GuestFacts, mac: string) => f.addresses.find((l) => l.address === mac);

export const linkByMac = (f: GuestFacts, mac: string) => {
  const link = findLinkByMac(f, mac);
  assert.ok(link, `the guest has a NIC with MAC ${mac}: ${JSON.stringify(f.addresses.map((l) => [l.ifname, l.address]))}`);
  return link;
};

/** Addresses beyond the link: QEMU's router advertises fec0::/64, which Linux scopes `site`. */
export const addrs = (f: GuestFacts, mac: string, family: 'inet' | 'inet6') =>
  (findLinkByMac(f, mac)?.addr_info ?? []).filter((a) => a.family === family && a.scope !== 'link' && a.scope !== 'host');

export const pathContent = (f: GuestFacts, p: string) => {
  const c = f.paths[p]?.content;
  return c === null || c === undefined ? null : Buffer.from(c, 'base64').toString('utf8');
};

export const systemUsers = (f: GuestFacts) =>
  f.passwd.split('\n').filter((l) => l !== '').map((l) => l.split(':')).filter((p) => Number(p[2]) >= 1000 && p[0] !== 'nobody').map((p) => p[0]);

export const cdromLabels = (f: GuestFacts) => Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]);

const short = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * The resolver the guest really uses and what it holds. resolvconf and NetworkManager
 * write /etc/resolv.conf themselves; with systemd-resolved it is the stub (127.0.0.53)
 * and the servers and domains the network stack gave resolved are in its own file.
 */
export function resolver(f: GuestFacts): { kind: string; servers: string[]; search: string[] } {
  const etc = f.resolv_conf ?? '';
  const stub = /^nameserver 127\.0\.0\.53$/m.test(etc);
  const text = stub ? (f.resolved_upstream ?? '') : etc;
  const kind = stub ? 'systemd-resolved' : /NetworkManager/.test(etc) ? 'NetworkManager' : /resolvconf/.test(etc) ? 'resolvconf' : 'resolv.conf';
  const servers = [...text.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]!);
  const search = [...text.matchAll(/^search\s+(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  return { kind, servers, search };
}

/** The network renderer cloud-init selected this boot, from its log. */
export const rendererOf = (f: GuestFacts) => f.renderer_log.map((l) => /Selected renderer '([^']+)'/.exec(l)?.[1]).join(',') || '?';

/** What a lifecycle boot did, printed as evidence: ids, ds-identify's verdict, keys and network files against `before`. */
export function evidence(label: string, f: GuestFacts, before: GuestFacts): void {
  const verdict = (f.ds_identify_log ?? '').split('\n').filter((l) => /DSLIST=|returned found|No ds found|returning \d/.test(l)).map((l) => l.trim());
  const same = (a: Record<string, string>, b: Record<string, string>) => (JSON.stringify(a) === JSON.stringify(b) ? 'unchanged' : 'CHANGED');
  console.log(`      evidence, ${label}:`);
  const decisive = f.lifecycle_log.filter((l) => /new=|previous iid|iid-datasource-none|fallback/i.test(l));
  console.log(`        instance-id ${f.instance_id || '-'}; cloud-init ${f.cloud_init_ran ? 'ran' : 'did not run'}: ${f.cloud_init_status.out.split('\n')[0] ?? ''}`);
  console.log(`        ds-identify: ${verdict.join(' | ') || '-'}`);
  for (const line of decisive.slice(0, 5)) console.log(`        cloud-init.log: ${line.replace(/^\S+ \S+ - /, '').slice(0, 150)}`);
  console.log(`        host keys ${same(f.host_keys, before.host_keys)}: ${Object.entries(f.host_keys).map(([n, k]) => `${n.replace(/^ssh_host_|_key\.pub$/g, '')}=${short(k)}`).join(' ')}`);
  console.log(`        network files ${same(f.network_files, before.network_files)}: ${Object.entries(f.network_files).map(([p, h]) => `${p}=${h.slice(0, 12)}`).join(' ')}`);
}

/** The drive-less boot's proof: ds-identify looked for our datasources, found none, and disabled cloud-init. */
export function disabledByGenerator(f: GuestFacts): boolean {
  return (
    /DSLIST=ConfigDrive NoCloud/.test(f.ds_identify_log ?? '') &&
    /notfound=disabled/.test(f.ds_identify_log ?? '') &&
    /status: disabled/.test(f.cloud_init_status.out) &&
    !f.cloud_init_ran
  );
}

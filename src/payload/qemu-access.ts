/**
 * Can QEMU, running as another user, open an image in the store? Evaluated the way the
 * kernel does for QEMU's uid, its gid and the supplementary groups libvirt gives it
 * (those of its user name in /etc/group): search permission on every directory from /
 * down, read permission on the file. The daemon runs this at start on a real probe
 * image, so a layout QEMU cannot read fails there with the fix, not 30 s into a start
 * with QEMU's "Permission denied". Not evaluated: POSIX ACLs, groups from NSS services
 * other than files, and security modules (AppArmor and SELinux policy, which libvirt's
 * own drivers label per guest; see docs/libvirt.md).
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AgentError } from '../errors.js';

export interface Identity {
  readonly uid: number;
  readonly gid: number;
  /** Every group QEMU holds, its gid included. */
  readonly groups: readonly number[];
  /** For messages: `libvirt-qemu`, or the number when /etc/passwd has no such user. */
  readonly userName: string;
}

interface Owned {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

const READ = 4;
const SEARCH = 1;

/** Owner bits for the owner, group bits for a member, other bits for the rest: never a mix. */
export function permits(file: Owned, who: Identity, bit: typeof READ | typeof SEARCH): boolean {
  if (who.uid === 0) return true;
  const mode = file.mode & 0o777;
  if (file.uid === who.uid) return ((mode >> 6) & bit) !== 0;
  if (who.groups.includes(file.gid)) return ((mode >> 3) & bit) !== 0;
  return (mode & bit) !== 0;
}

/**
 * QEMU's identity as libvirt sets it up (virGetGroupList): the label's uid and gid, the
 * user's primary group from /etc/passwd, and every group that lists the user. On Debian
 * that is libvirt-qemu's own group and kvm, its primary group.
 */
export function identityFrom(uid: number, gid: number, passwd: string, group: string): Identity {
  const entry = passwd.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(uid));
  const userName = entry?.[0];
  const groups = new Set([gid]);
  if (entry?.[3] !== undefined && /^\d+$/.test(entry[3])) groups.add(Number(entry[3]));
  if (userName !== undefined) {
    for (const fields of group.split('\n').map((l) => l.split(':'))) {
      const members = (fields[3] ?? '').split(',').map((m) => m.trim());
      if (fields[2] !== undefined && members.includes(userName)) groups.add(Number(fields[2]));
    }
  }
  return { uid, gid, groups: [...groups], userName: userName ?? String(uid) };
}

export async function qemuIdentityOnHost(uid: number, gid: number): Promise<Identity> {
  const [passwd, group] = await Promise.all([readFile('/etc/passwd', 'utf8').catch(() => ''), readFile('/etc/group', 'utf8').catch(() => '')]);
  return identityFrom(uid, gid, passwd, group);
}

export interface Refusal {
  readonly path: string;
  readonly need: 'search' | 'read';
  readonly owner: Owned;
}

/** The first directory QEMU cannot search on the way to `file`, or the file if it cannot read it. */
export async function firstRefusal(file: string, who: Identity): Promise<Refusal | undefined> {
  const dirs: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const dir of dirs) {
    const owner = await stat(dir);
    if (!permits(owner, who, SEARCH)) return { path: dir, need: 'search', owner };
  }
  const owner = await stat(file);
  return permits(owner, who, READ) ? undefined : { path: file, need: 'read', owner };
}

function describe(o: Owned): string {
  return `owner ${String(o.uid)}, group ${String(o.gid)}, mode 0${(o.mode & 0o777).toString(8)}`;
}

/** Throws HOST_SETUP naming the directory or file in the way, and the fix. */
export async function assertQemuCanRead(file: string, who: Identity): Promise<void> {
  const refusal = await firstRefusal(file, who);
  if (refusal === undefined) return;
  const qemu = `QEMU runs as ${who.userName} (uid ${String(who.uid)}, groups ${who.groups.join(',')}, libvirt's DAC label)`;
  const fix =
    refusal.need === 'search'
      ? `chmod o+x ${refusal.path} (search only, not listing), or move stateDir under directories QEMU may search`
      : `leave isoGroup unset (the default is QEMU's own group ${String(who.gid)}), or make QEMU's user a member of group ${String(refusal.owner.gid)}`;
  throw new AgentError(
    'HOST_SETUP',
    `${qemu} and cannot ${refusal.need} ${refusal.path} (${describe(refusal.owner)}), so no guest could read its drive. Fix: ${fix}`,
    { details: { path: refusal.path, need: refusal.need } },
  );
}

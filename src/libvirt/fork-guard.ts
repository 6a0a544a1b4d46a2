/**
 * Why the agent must start with file descriptors 3 and 4 already open.
 *
 * libuv (inside Node) registers a pthread_atfork child handler that closes its
 * signal-lock pipe by number and makes a new one, in every forked child. libvirt 9.0
 * starts QEMU with a double fork: the first child closes every descriptor it does not
 * pass on, opens a sync pipe (which takes the lowest free numbers, 3 and 4), then forks
 * again; libuv's handler in that grandchild closes the numbers its pipe had, which in a
 * plain `node` process are 4 and 5. The grandchild then writes to a closed descriptor
 * and QEMU never starts ("Unable to notify child process: Bad file descriptor").
 *
 * When fds 3 and 4 are taken before Node starts (`node ... 3</dev/null 4</dev/null`,
 * or systemd's listening socket on 3 plus anything on 4), libuv's pipe gets higher
 * numbers and the two never meet. This only matters for drivers that run inside the
 * agent's process (qemu:///embed); a connection to libvirtd forks nothing here.
 */
import { readdirSync, readlinkSync } from 'node:fs';

function target(fd: string): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** True when no pipe with both ends open in this process sits on fd 3 or 4. */
export function forkSafeDescriptors(): boolean {
  const pipes = new Map<string, string[]>();
  for (const fd of readdirSync('/proc/self/fd')) {
    const t = target(fd);
    if (t?.startsWith('pipe:') === true) pipes.set(t, [...(pipes.get(t) ?? []), fd]);
  }
  for (const fds of pipes.values()) {
    if (fds.length >= 2 && (fds.includes('3') || fds.includes('4'))) return false;
  }
  return true;
}

export const FORK_GUARD_HINT =
  'QEMU cannot be started from this process: libuv holds a pipe on file descriptor 3 or 4, which libvirt 9.0 reuses when it ' +
  'daemonizes QEMU (see src/libvirt/fork-guard.ts). Start the agent with descriptors 3 and 4 already open, ' +
  'e.g. `node ... 3</dev/null 4</dev/null` (the configdrived and test launchers do this).';

/** Drivers that run inside this process and fork QEMU from it. */
export function isInProcessUri(uri: string): boolean {
  return uri.startsWith('qemu:///embed');
}

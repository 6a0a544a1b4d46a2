/** The bits of the host the daemon talks to: group names and systemd's notify socket. */
import { readFile } from 'node:fs/promises';
import { AgentError } from '../../src/errors.js';

/** A group name (or number) from /etc/group. */
export async function groupId(name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  const gid = line?.split(':')[2];
  if (gid === undefined) throw new AgentError('CONFIG_INVALID', `group ${name} does not exist`);
  return Number(gid);
}

/**
 * sd_notify(3) through systemd-notify: Node has no datagram Unix sockets. The message
 * names our pid, and the unit sets NotifyAccess=all because the sender is a child.
 */
export async function notifySystemd(state: string): Promise<void> {
  if (process.env['NOTIFY_SOCKET'] === undefined) return;
  // Loaded only under systemd: execa costs about 12 MB of memory once imported.
  const { execa } = await import('execa');
  await execa('systemd-notify', [`--pid=${String(process.pid)}`, state], { reject: false, stdio: 'ignore' });
}

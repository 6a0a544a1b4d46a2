/**
 * Who is on the other end of a Unix socket: SO_PEERCRED through getsockopt(2). Node has
 * no API for it; the kernel's answer (pid, uid, gid of the connecting process) is what
 * the daemon logs and authorizes on. koffi is used here only for this one libc call.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const Ucred = koffi.struct('ucred', { pid: 'int32', uid: 'uint32', gid: 'uint32' });
// int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen);
// optval and optlen are caller-owned buffers: nothing is allocated by libc here.
const getsockopt = libc.func('int getsockopt(int fd, int level, int optname, _Out_ ucred *optval, _Inout_ uint32_t *optlen)');

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export function peerCredentials(fd: number): PeerCredentials | undefined {
  const cred = { pid: 0, uid: 0, gid: 0 };
  const len = [koffi.sizeof(Ucred)];
  const rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) as number;
  return rc === 0 ? cred : undefined;
}

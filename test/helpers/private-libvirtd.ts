/**
 * A private libvirt daemon (tools/private-libvirtd) for tests and benchmarks: started,
 * waited for, and stopped with whatever it still runs. Free of mocha, so bench/ uses it
 * too.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PRIVATE_LIBVIRTD = resolve(dirname(fileURLToPath(import.meta.url)), '../../../tools/private-libvirtd');

export interface PrivateLibvirtd {
  readonly uri: string;
  readonly dir: string;
  /** Everything libvirtd and virtlogd printed, for a failing test's message. */
  log(): string;
  /** Destroys every domain it runs, stops both daemons and removes DIR. */
  stop(): Promise<void>;
}

/** A private libvirtd (tools/private-libvirtd), ready when its socket answers. */
export async function startPrivateLibvirtd(): Promise<PrivateLibvirtd> {
  const dir = mkdtempSync(join(tmpdir(), 'libvirtd-'));
  const logPath = join(dir, 'daemon.log');
  const daemon = execa(PRIVATE_LIBVIRTD, [dir], { stdin: 'pipe', stdout: 'ignore', stderr: 'ignore', reject: false });
  const socket = join(dir, 'sock', 'libvirt-sock');
  const uri = `qemu+unix:///system?socket=${socket}`;
  const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  const deadline = Date.now() + 30_000;
  while (!existsSync(socket)) {
    if (daemon.exitCode !== null) throw new Error(`private libvirtd exited ${String(daemon.exitCode)}:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`private libvirtd gave no socket in 30 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    uri,
    dir,
    log,
    async stop() {
      // QEMU outlives libvirtd by design: destroy what still runs before stopping it.
      await execa('sh', ['-c', `for d in $(virsh -c "$1" list --name); do virsh -c "$1" destroy "$d"; done`, 'sh', uri], { reject: false });
      daemon.stdin?.end();
      daemon.kill('SIGTERM');
      await daemon;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A Debian 12 container with systemd as PID 1, for the system journey: the cached root
 * (test/system/container/build-root.sh) under an overlay of its own, so every run starts
 * from the same clean root and leaves nothing in it, booted by systemd-nspawn.
 *
 * This host's PID 1 is not systemd, so nspawn runs with --register=no --keep-unit (no
 * machined to register with, no unit to create) and `machinectl`/`systemd-run --machine`
 * cannot reach the container: commands enter it with nsenter through the namespaces of
 * its PID 1, found as nspawn's child. --private-network gives the container loopback
 * only, so its libvirtd cannot touch this host's network.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { execa } from 'execa';

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the journey keeps of a process it started. */
interface Child {
  readonly pid: number | undefined;
  readonly exited: Promise<void>;
  kill(signal: NodeJS.Signals): boolean;
  exitCode(): number | null | undefined;
}

export interface Background {
  readonly stdout: Readable;
  readonly result: Promise<ExecResult>;
}

export interface ExecOptions {
  /** Run as this user, with its primary group `users` and its supplementary groups. */
  readonly user?: string;
  readonly input?: string;
  readonly timeoutMs?: number;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pid of `parent`'s child that is PID 1 of a pid namespace of its own. */
function namespaceLeader(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, 'utf8');
    } catch {
      continue;
    }
    const ppid = /^PPid:\s+(\d+)$/m.exec(status)?.[1];
    const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (ppid === String(parent) && nspid !== undefined && nspid.length > 1 && nspid.at(-1) === '1') return Number(entry);
  }
  return undefined;
}

export class Container {
  private constructor(
    /** The per-run directory: overlay upper and work dirs, the merged root, nspawn's log. */
    readonly runDir: string,
    private readonly nspawn: Child,
    /** PID 1 of the container, as this host numbers it. */
    readonly leader: number,
    readonly bootMs: number,
  ) {}

  /** The container's root as this host sees it (the overlay's merged directory). */
  get root(): string {
    return join(this.runDir, 'merged');
  }

  /** Mounts an overlay over `lowerRoot`, boots it and waits until systemd reports running or degraded. */
  static async boot(lowerRoot: string, timeoutMs: number): Promise<Container> {
    const started = performance.now();
    const runDir = mkdtempSync(join(tmpdir(), 'configdrive-journey-'));
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(runDir, d));
    const overlay = await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerRoot},upperdir=${join(runDir, 'upper')},workdir=${join(runDir, 'work')}`, join(runDir, 'merged')], { reject: false });
    if (overlay.exitCode !== 0) {
      rmSync(runDir, { recursive: true, force: true });
      throw new Error(`cannot mount an overlay over ${lowerRoot}: ${overlay.stderr}`);
    }
    const log = { file: join(runDir, 'nspawn.log'), append: true };
    const sub = execa(
      'systemd-nspawn',
      ['--boot', '--register=no', '--keep-unit', '--private-network', '--console=passive', '--machine=configdrive-journey', '-D', join(runDir, 'merged')],
      { reject: false, stdin: 'ignore', stdout: log, stderr: log },
    );
    const nspawn: Child = { pid: sub.pid, exited: sub.then(() => undefined), kill: (signal) => sub.kill(signal), exitCode: () => sub.exitCode };
    // For tools/run-journey: a run killed before its after hook leaves this for the next one to end.
    writeFileSync(join(runDir, 'nspawn.pid'), `${String(sub.pid)}\n`);
    const fail = async (why: string): Promise<never> => {
      const said = readFileSync(join(runDir, 'nspawn.log'), 'utf8').trim();
      nspawn.kill('SIGKILL');
      await nspawn.exited;
      await unmountAndRemove(runDir);
      throw new Error(`${why}; nspawn said: ${said}`);
    };
    const deadline = Date.now() + timeoutMs;
    let leader: number | undefined;
    while (leader === undefined) {
      const code = nspawn.exitCode();
      if (code !== undefined && code !== null) return fail(`systemd-nspawn exited ${String(code)}`);
      if (Date.now() > deadline) return fail('no container PID 1 appeared');
      leader = nspawn.pid === undefined ? undefined : namespaceLeader(nspawn.pid);
      if (leader === undefined) await sleep(50);
    }
    const container = new Container(runDir, nspawn, leader, 0);
    let state = '';
    for (;;) {
      state = (await container.exec(['systemctl', 'is-system-running'])).stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      if (Date.now() > deadline) return fail(`systemd in the container is still '${state}' after ${String(timeoutMs)} ms`);
      await sleep(200);
    }
    return new Container(runDir, nspawn, leader, performance.now() - started);
  }

  /** argv inside the container: all its namespaces, a clean environment, optionally another user. */
  private argv(args: readonly string[], user: string | undefined): string[] {
    const env = ['env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', `HOME=${user === undefined ? '/root' : `/home/${user}`}`, `USER=${user ?? 'root'}`];
    const as = user === undefined ? [] : ['setpriv', `--reuid=${user}`, '--regid=users', '--init-groups', '--'];
    return ['-t', String(this.leader), '-a', '--', ...env, ...as, ...args];
  }

  async exec(args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const r = await execa('nsenter', this.argv(args, options.user), {
      reject: false,
      encoding: 'utf8',
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      timeout: options.timeoutMs ?? 60_000,
    });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Like exec, but a non-zero exit status throws with what the command printed. */
  async run(args: readonly string[], options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(args, options);
    if (r.exitCode !== 0) throw new Error(`${args.join(' ')}${options.user === undefined ? '' : ` (as ${options.user})`} exited ${String(r.exitCode)}: ${r.stderr.trim()} ${r.stdout.trim()}`);
    return r.stdout;
  }

  /** Starts a command inside the container without waiting for it. */
  spawn(args: readonly string[], options: Pick<ExecOptions, 'user'> = {}): Background {
    const sub = execa('nsenter', this.argv(args, options.user), { reject: false, encoding: 'utf8', stdin: 'ignore' });
    return { stdout: sub.stdout, result: sub.then((r) => ({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) })) };
  }

  /** Copies a file of this host into the container (through the overlay, as root). */
  copyIn(hostPath: string, path: string): void {
    const host = join(this.root, path);
    mkdirSync(dirname(host), { recursive: true });
    copyFileSync(hostPath, host);
  }

  /** Writes a file into the container's root (through the overlay, as root). */
  writeFile(path: string, content: string | Buffer, mode = 0o644): void {
    const host = join(this.root, path);
    mkdirSync(dirname(host), { recursive: true });
    writeFileSync(host, content, { mode });
  }

  /**
   * Powers the container off and waits for nspawn; kills it if that takes too long.
   * Then removes the overlay and everything the run wrote. Never throws.
   */
  async shutdown(timeoutMs: number): Promise<{ clean: boolean; ms: number }> {
    const started = performance.now();
    await this.exec(['systemctl', 'poweroff', '--no-block'], { timeoutMs: 10_000 }).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([this.nspawn.exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!exited) {
      this.nspawn.kill('SIGKILL');
      // SIGKILL to a pid namespace's PID 1 ends every process in it, QEMU included.
      try {
        process.kill(this.leader, 'SIGKILL');
      } catch {
        // Already gone with nspawn.
      }
      await this.nspawn.exited;
    }
    await unmountAndRemove(this.runDir);
    return { clean: exited, ms: performance.now() - started };
  }
}

async function unmountAndRemove(runDir: string): Promise<void> {
  const merged = join(runDir, 'merged');
  const r = await execa('umount', [merged], { reject: false });
  // Busy only if a process of the container outlived it: detach, so the directory can go.
  if (r.exitCode !== 0) await execa('umount', ['--lazy', merged], { reject: false });
  rmSync(runDir, { recursive: true, force: true });
}

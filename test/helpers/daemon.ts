/**
 * The real configdrived process for the fault suites: started with descriptors 3 and 4
 * on /dev/null (so it never re-executes itself and its pid is the daemon's), its log
 * kept, and a client connected once it listens.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RpcClient } from '../../src/rpc/client.js';

export const DAEMON = resolve(dirname(fileURLToPath(import.meta.url)), '../../agent/configdrived.js');

function launch(args: readonly string[]) {
  return execa(process.execPath, [DAEMON, ...args], { stdio: ['ignore', 'ignore', 'pipe', { file: '/dev/null' }, { file: '/dev/null' }], reject: false });
}

export interface DaemonProcess {
  readonly process: ReturnType<typeof launch>;
  readonly pid: number;
  /** Everything it wrote to stderr so far. */
  log(): string;
}

export function startDaemon(args: readonly string[]): DaemonProcess {
  const child = launch(args);
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { process: child, pid: child.pid!, log: () => text };
}

/** A client on `path`, retried until the daemon listens; fails early if the daemon exited. */
export async function connectWhenReady(daemon: DaemonProcess, path: string, timeoutMs = 60_000): Promise<RpcClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (daemon.process.exitCode !== null) throw new Error(`configdrived exited ${String(daemon.process.exitCode)} before it listened:\n${daemon.log()}`);
    try {
      return await RpcClient.connect(path);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/**
 * `configdrive wait DOMAIN [--timeout S]`: blocks until the domain's guest reports that
 * cloud-init finished (VM.initialized), with a progress line on stderr. Exit 0 done,
 * 1 error (cloud-init's errors printed), 124 timeout, as timeout(1) does.
 */
import { RpcClient } from '../../src/rpc/client.js';
import { EXIT, GLOBAL_OPTIONS, UsageError, parseCommandLine, type Command } from './command.js';

const POLL_MS = 2000;
export const EXIT_TIMEOUT = 124;

interface InitView {
  state: 'pending' | 'done' | 'error';
  instanceId: string;
  since: string;
  reportedAt?: string;
  errors?: string[];
  seconds?: number | null;
}

export function waitCommand(connect: (socket: string | undefined) => Promise<RpcClient>): Command {
  return {
    name: 'wait',
    summary: 'wait until cloud-init in the guest reports it has finished (VM.initialized)',
    help:
      'Usage: configdrive wait DOMAIN [--timeout S] [--socket PATH] [--json]\n\n' +
      "Blocks until the domain's guest reports over the agent's channel that cloud-init has\n" +
      'finished: at once if the current run already reported. A guest that never reports\n' +
      'stays pending; --timeout ends the wait.\n\n' +
      'Exit status: 0 done, 1 cloud-init reported errors (printed) or the daemon an error,\n2 wrong command line, 124 timeout.\n',
    async run(argv, io) {
      const { values, positionals } = parseCommandLine(argv, { ...GLOBAL_OPTIONS, timeout: { type: 'string' } });
      if (positionals.length !== 1) throw new UsageError('expected exactly one DOMAIN');
      const timeout = values.timeout === undefined ? Infinity : Number(values.timeout);
      if (!(timeout >= 0)) throw new UsageError('--timeout takes a number of seconds');
      const domain = positionals[0]!;
      const client = await connect(values.socket);
      const begun = performance.now();
      let wake: (() => void) | undefined;
      client.onNotification((method, params) => {
        if (method === 'VM.initialized' && typeof params === 'object' && params !== null) {
          const d = (params as { domain?: { name?: string; uuid?: string } }).domain;
          if (d?.name === domain || d?.uuid === domain) wake?.();
        }
      });
      try {
        for (;;) {
          const got = (await client.call('Payload.get', { domain })) as { domain: { name: string }; initialization: InitView | null };
          const init = got.initialization;
          const elapsed = (performance.now() - begun) / 1000;
          if (init !== null && init.state !== 'pending') {
            if (values.json) io.stdout.write(`${JSON.stringify(init, null, 2)}\n`);
            else {
              io.stdout.write(`${got.domain.name}: cloud-init ${init.state} (${init.instanceId}${init.seconds == null ? '' : `, ${String(init.seconds)} s in the guest`}, reported ${init.reportedAt ?? '?'})\n`);
              for (const e of init.errors ?? []) io.stdout.write(`  error: ${e}\n`);
            }
            return init.state === 'done' ? EXIT.OK : EXIT.FAILED;
          }
          io.stderr.write(`${got.domain.name}: ${elapsed.toFixed(0)} s, ${init === null ? 'no run of its drive seen yet' : `pending since ${init.since}`}\n`);
          if (elapsed >= timeout) {
            io.stderr.write(`${got.domain.name}: no report within ${String(timeout)} s\n`);
            return EXIT_TIMEOUT;
          }
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Math.min(POLL_MS, Math.max(0, (timeout - elapsed) * 1000)));
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
        }
      } finally {
        client.close();
      }
    },
  };
}

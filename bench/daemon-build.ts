/**
 * Issue 5's benchmark: Payload.build over the daemon's socket with 1, 16 and 64
 * concurrent clients, for settings without a password and for the seed's XML (whose
 * root password is hashed with SHA-512 crypt each time: every build without a domain
 * gets a fresh instance-id, so the hash cache never helps). Prints requests/s, p50 and
 * p99 latency, and the daemon's RSS idle and under load.
 *
 *   npm run build && node dist/bench/daemon-build.js
 *
 * BENCH_DAEMON_NODE_ARGS passes Node flags to the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareEmbedRoot } from '../src/libvirt/embed.js';
import { RpcClient } from '../src/rpc/client.js';
import { formatMs, summarize, table } from './lib/timing.js';
import { SEED_XML } from './lib/seed.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SECONDS = 4;
const NO_PASSWORD = SEED_XML.toString('utf8').replace(/<users>[\s\S]*?<\/users>/, '');

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${String(pid)}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-daemon-'));
const sock = join(dir, 'sock');
const uri = await prepareEmbedRoot(join(dir, 'embed'));
const daemonNodeArgs = (process.env['BENCH_DAEMON_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
const daemon = execa(process.execPath, [...daemonNodeArgs, resolve(HERE, '../agent/configdrived.js'), '--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state'), '--log-level', 'warning'], {
  stdio: ['ignore', 'ignore', 'inherit', { file: '/dev/null' }, { file: '/dev/null' }],
  reject: false,
});
try {
  let probe: RpcClient | undefined;
  for (let i = 0; i < 600 && probe === undefined; i++) probe = await RpcClient.connect(sock).catch(async () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)));
  if (probe === undefined) throw new Error('daemon did not come up');
  probe.close();
  await new Promise((r) => setTimeout(r, 500));
  const idle = rssMiB(daemon.pid!);
  const rows: string[][] = [];
  let peak = idle;
  for (const [label, doc] of [['no password', NO_PASSWORD], ["seed XML (SHA-512 crypt)", SEED_XML.toString('utf8')]] as const) {
    for (const clients of [1, 16, 64]) {
      const conns = await Promise.all(Array.from({ length: clients }, () => RpcClient.connect(sock)));
      const latencies: number[] = [];
      const end = performance.now() + SECONDS * 1000;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(daemon.pid!))), 200);
      await Promise.all(
        conns.map(async (c) => {
          while (performance.now() < end) {
            const t = performance.now();
            await c.call('Payload.build', { initialization: doc, format: 'xml' });
            latencies.push(performance.now() - t);
          }
        }),
      );
      clearInterval(sampler);
      for (const c of conns) c.close();
      const s = summarize(latencies);
      rows.push([label, String(clients), (latencies.length / SECONDS).toFixed(0), formatMs(s.median), formatMs(s.p99)]);
    }
  }
  console.log(`node ${process.version}, ${new Date().toISOString()}, ${String(SECONDS)} s per row; each build is stored (not fsynced: a build is a cache) and read back\n`);
  console.log(table(['input', 'clients', 'builds/s', 'p50', 'p99'], rows));
  console.log(`\ndaemon RSS: ${idle.toFixed(0)} MiB idle, ${peak.toFixed(0)} MiB peak under load`);
} finally {
  daemon.kill('SIGTERM');
  await daemon;
  rmSync(dir, { recursive: true, force: true });
}

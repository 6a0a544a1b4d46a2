/**
 * Issue 5's benchmark: Payload.build over the daemon's socket with 1, 16 and 64
 * concurrent clients, for the seed's settings without a password (as an oVirt REST JSON
 * object, and as REST XML) and for the seed's XML itself, whose root password is hashed
 * with SHA-512 crypt every time (a build for no domain gets a fresh instance-id, so the
 * hash cache never helps). Prints requests/s, p50 and p99 latency, the daemon's RSS idle
 * and under load, and beside them the baseline: the same build work with no daemon and
 * no socket, on as many threads as the daemon has build threads, which is what this
 * machine can build at all.
 *
 *   npm run build && node dist/bench/daemon-build.js
 *
 * BENCH_DAEMON_NODE_ARGS passes Node flags to the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { prepareEmbedRoot } from '../src/libvirt/embed.js';
import { runBuildJobToFile, type BuildJob } from '../src/payload/build-job.js';
import { RpcClient } from '../src/rpc/client.js';
import { formatMs, summarize, table } from './lib/timing.js';
import { SEED_XML, SEED_XML_NO_PASSWORD, seedJsonNoPassword } from './lib/seed.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SECONDS = 4;
const BUILD_THREADS = 2; // the daemon's default

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${String(pid)}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

/** Baseline thread: builds the JSON document into `dir` for SECONDS, reports how many. */
async function baselineThread(): Promise<void> {
  const { dir, document } = workerData as { dir: string; document: object };
  const job = (uuid: string): BuildJob => ({ source: { kind: 'initialization', document }, facts: { uuid, nics: [] }, label: 'config-2', writer: 'builtin' });
  for (let i = 0; i < 200; i++) await runBuildJobToFile(job(crypto.randomUUID()), { dir }, { blockingHash: true });
  let builds = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    await runBuildJobToFile(job(crypto.randomUUID()), { dir }, { blockingHash: true });
    builds++;
  }
  parentPort!.postMessage(builds);
}

async function baseline(document: object, dir: string): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: BUILD_THREADS }, (_, i) => {
      const out = join(dir, `baseline-${String(i)}`);
      mkdirSync(out);
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { dir: out, document } });
      return new Promise<number>((resolve, reject) => worker.once('message', resolve).once('error', reject)).finally(() => void worker.terminate());
    }),
  );
  return counts.reduce((a, b) => a + b, 0) / SECONDS;
}

async function main(): Promise<void> {
  const json = await seedJsonNoPassword();
  const inputs = [
    ['no password, REST JSON object', { initialization: json }],
    ['no password, REST XML', { initialization: SEED_XML_NO_PASSWORD, format: 'xml' }],
    ['seed XML (SHA-512 crypt)', { initialization: SEED_XML.toString('utf8'), format: 'xml' }],
  ] as const;
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
    const load = async (params: Record<string, unknown>, clients: number, seconds: number): Promise<number[]> => {
      const conns = await Promise.all(Array.from({ length: clients }, () => RpcClient.connect(sock)));
      const latencies: number[] = [];
      const end = performance.now() + seconds * 1000;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(daemon.pid!))), 200);
      await Promise.all(
        conns.map(async (c) => {
          while (performance.now() < end) {
            const t = performance.now();
            await c.call('Payload.build', params);
            latencies.push(performance.now() - t);
          }
        }),
      );
      clearInterval(sampler);
      for (const c of conns) c.close();
      return latencies;
    };
    for (const [label, params] of inputs) {
      // Unmeasured: starts the build threads and lets the JIT settle on this input.
      await load(params, 16, 1);
      for (const clients of [1, 16, 64]) {
        const latencies = await load(params, clients, SECONDS);
        const s = summarize(latencies);
        rows.push([label, String(clients), (latencies.length / SECONDS).toFixed(0), formatMs(s.median), formatMs(s.p99)]);
      }
    }
    daemon.kill('SIGTERM');
    await daemon;
    const ceiling = await baseline(json, dir);
    rows.push([`baseline: the JSON build alone on ${String(BUILD_THREADS)} threads, no daemon`, '-', ceiling.toFixed(0), '', '']);
    console.log(`node ${process.version}, ${String(availableParallelism())} CPUs, ${new Date().toISOString()}, ${String(SECONDS)} s per row after 1 s of unmeasured warm-up per input`);
    console.log(`each build is parsed, hashed, translated, packed and read by our reader on one of ${String(BUILD_THREADS)} build threads, then stored (not fsynced: a build is a cache)\n`);
    console.log(table(['input', 'clients', 'builds/s', 'p50', 'p99'], rows));
    console.log(`\ndaemon RSS: ${idle.toFixed(0)} MiB idle (no build thread started yet), ${peak.toFixed(0)} MiB peak under load`);
  } finally {
    daemon.kill('SIGTERM');
    await daemon;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else await baselineThread();

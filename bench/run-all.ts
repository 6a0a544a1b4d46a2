/**
 * `npm run bench`: every benchmark in turn, each in its own process (the VM.start one
 * needs descriptors 3 and 4 taken before Node starts: src/libvirt/fork-guard.ts).
 * Prints each one's table as it finishes, then the time the whole run took.
 */
import { execa } from 'execa';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCHES = [
  ['issue 2: ISO writers', 'iso-writers.js'],
  ['issue 3: seed XML to a verified image', 'seed-build.js'],
  ['issue 4: VM.start on real QEMU', 'vm-start.js'],
  ['issue 5: Payload.build over the socket', 'daemon-build.js'],
] as const;

const started = performance.now();
let failed = 0;
for (const [title, file] of BENCHES) {
  process.stdout.write(`\n== ${title} (node dist/bench/${file})\n\n`);
  const t = performance.now();
  const result = await execa(process.execPath, [join(HERE, file)], { stdio: ['ignore', 'inherit', 'inherit', { file: '/dev/null' }, { file: '/dev/null' }], reject: false });
  if (result.exitCode !== 0) failed++;
  process.stdout.write(`\n(${((performance.now() - t) / 1000).toFixed(0)} s${result.exitCode === 0 ? '' : `, exit status ${String(result.exitCode)}`})\n`);
}
process.stdout.write(`\nall benchmarks: ${((performance.now() - started) / 1000).toFixed(0)} s${failed > 0 ? `, ${String(failed)} failed` : ''}\n`);
process.exitCode = failed > 0 ? 1 : 0;

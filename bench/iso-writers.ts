/**
 * Issue 2's benchmark: the builtin writer against genisoimage and pycdlib, in one run,
 * for a typical config drive (the seed's four files) and a 10 MB tree.
 *
 *   npm run build && node dist/bench/iso-writers.js
 *
 * pycdlib is timed inside one Python process (its own loop), so its figure has no
 * process start-up in it; genisoimage's includes its process, as the agent would pay it.
 */
import { execa } from 'execa';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriveTree } from '../src/cloudinit/index.js';
import { parseInitialization } from '../src/initialization/index.js';
import { writeIsoImage, writeWithGenisoimage, type IsoTree } from '../src/iso/index.js';
import { formatMs, measure, summarize, table, type Sample } from './lib/timing.js';
import { SEED_XML } from './lib/seed.js';

const PYCDLIB_LOOP = `
import io, json, re, sys, time, pycdlib
def dch(s, n): return re.sub('[^A-Z0-9_]', '_', s.upper())[:n]
spec = json.load(sys.stdin)
def build():
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=2, vol_ident='config-2', rock_ridge='1.09', joliet=3)
    made = set()
    for path, hexdata in spec['files']:
        parts = path.split('/')
        for i in range(1, len(parts)):
            d = '/'.join(parts[:i])
            if d not in made:
                made.add(d)
                iso.add_directory(iso_path='/' + '/'.join(dch(p, 8) for p in parts[:i]), rr_name=parts[i-1], joliet_path='/' + d)
        data = bytes.fromhex(hexdata)
        name = parts[-1]
        iso_name = '/'.join(dch(p, 8) for p in parts[:-1]) + '/' + dch(name, 8) + ';1'
        iso.add_fp(io.BytesIO(data), len(data), '/' + iso_name.lstrip('/'), rr_name=name, joliet_path='/' + path)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return len(out.getvalue())
size = build()
times = []
end = time.perf_counter() + spec['budget']
while len(times) < 5 or time.perf_counter() < end:
    t = time.perf_counter(); build(); times.append((time.perf_counter() - t) * 1000)
json.dump({'times': times, 'size': size}, sys.stdout)
`;

async function pycdlib(tree: IsoTree, budgetSeconds: number): Promise<{ sample: Sample; size: number }> {
  const files = [...tree.files].map(([p, b]) => [p, Buffer.from(b).toString('hex')]);
  const r = await execa('/usr/bin/python3', ['-c', PYCDLIB_LOOP], { input: JSON.stringify({ files, budget: budgetSeconds }) });
  const out = JSON.parse(r.stdout) as { times: number[]; size: number };
  return { sample: summarize(out.times), size: out.size };
}

async function compare(name: string, tree: IsoTree, megabytes: number): Promise<void> {
  const builtin = await measure(() => writeIsoImage(tree), { budgetMs: 2000 });
  const builtinSize = writeIsoImage(tree).length;
  const geniso = await measure(() => writeWithGenisoimage(tree), { budgetMs: 3000, minRuns: 10, warmup: 2 });
  const genisoSize = (await writeWithGenisoimage(tree)).length;
  const py = await pycdlib(tree, 3);
  const rate = (s: Sample) => (megabytes > 0 ? `${(megabytes / (s.median / 1000)).toFixed(0)} MB/s` : '');
  console.log(`\n${name}`);
  console.log(
    table(
      ['writer', 'median', 'p99', 'runs', 'image bytes', 'vs builtin', megabytes > 0 ? 'throughput' : ''],
      [
        ['builtin (in-process)', formatMs(builtin.median), formatMs(builtin.p99), String(builtin.runs), String(builtinSize), '1.0x', rate(builtin)],
        ['genisoimage (spawned)', formatMs(geniso.median), formatMs(geniso.p99), String(geniso.runs), String(genisoSize), `${(geniso.median / builtin.median).toFixed(1)}x slower`, rate(geniso)],
        ['pycdlib (in-process loop)', formatMs(py.sample.median), formatMs(py.sample.p99), String(py.sample.runs), String(py.size), `${(py.sample.median / builtin.median).toFixed(1)}x slower`, rate(py.sample)],
      ],
    ),
  );
}

const typical = buildDriveTree(parseInitialization(SEED_XML).initialization, { uuid: '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b', nics: [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }, { mac: '52:54:00:00:00:03' }] }).tree;
const withContent = new Map(typical);
withContent.set('openstack/content/0000', new TextEncoder().encode('temp content'));
const big = new Map<string, Uint8Array>();
for (let i = 0; i < 20; i++) big.set(`data/file-${String(i).padStart(2, '0')}.bin`, new Uint8Array(512 * 1024).fill(i));

console.log(`node ${process.version}, ${new Date().toISOString()}`);
await compare(`typical drive: the seed's files (${String([...withContent.values()].reduce((n, b) => n + b.length, 0))} bytes in ${String(withContent.size)} files)`, { files: withContent }, 0);
await compare('10 MB tree: 20 files of 512 KiB', { files: big }, 10.48576);
const dir = mkdtempSync(join(tmpdir(), 'bench-'));
writeFileSync(join(dir, 'typical.iso'), writeIsoImage({ files: withContent }));
rmSync(dir, { recursive: true, force: true });

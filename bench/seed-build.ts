/**
 * Issue 3's benchmark: the seed's REST XML to a finished, verified config-2 image, the
 * agent's whole build path (parse, hash, translate, pack, read back), against building
 * the same tree with genisoimage, in one run.
 *
 *   npm run build && node dist/bench/seed-build.js
 *
 * The seed sets a root password. Its SHA-512 crypt (5000 rounds, about 1 ms of CPU by
 * design) is shown both ways: "cold" hashes it every time (a new instance each build),
 * "warm" is a repeated request for the same VM, served from the in-memory hash cache.
 */
import { buildDriveTree, passwordHashCache } from '../src/cloudinit/index.js';
import { parseInitialization } from '../src/initialization/index.js';
import { createIsoWriter, writeWithGenisoimage } from '../src/iso/index.js';
import { buildDriveImage } from '../src/payload/build-drive.js';
import { formatMs, measure, table } from './lib/timing.js';
import { SEED_XML } from './lib/seed.js';

const facts = { uuid: '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b', nics: [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }, { mac: '52:54:00:00:00:03' }] };
const writer = createIsoWriter('builtin');
const noPassword = Buffer.from(SEED_XML.toString('utf8').replace(/<users>[\s\S]*?<\/users>/, ''));

const warm = await measure(async () => buildDriveImage(parseInitialization(SEED_XML).initialization, facts, { writer }), { budgetMs: 2000 });
let n = 0;
const cold = await measure(async () => {
  passwordHashCache.clear();
  await buildDriveImage(parseInitialization(SEED_XML).initialization, { ...facts, uuid: `bench-${String(n++)}` }, { writer });
}, { budgetMs: 2000 });
const without = await measure(async () => buildDriveImage(parseInitialization(noPassword).initialization, facts, { writer }), { budgetMs: 2000 });
const tree = buildDriveTree(parseInitialization(SEED_XML).initialization, facts).tree;
const geniso = await measure(() => writeWithGenisoimage({ files: tree }), { budgetMs: 3000, minRuns: 10, warmup: 2 });

console.log(`node ${process.version}, ${new Date().toISOString()}`);
console.log("seed's REST XML -> verified config-2 image (parse, hash, translate, pack, read back)\n");
console.log(
  table(
    ['path', 'median', 'p99', 'runs', 'genisoimage / this'],
    [
      ['agent, password hash cached (repeated request)', formatMs(warm.median), formatMs(warm.p99), String(warm.runs), `${(geniso.median / warm.median).toFixed(0)}x`],
      ['agent, password hashed every time (cold)', formatMs(cold.median), formatMs(cold.p99), String(cold.runs), `${(geniso.median / cold.median).toFixed(0)}x`],
      ['agent, the seed without its <users> (no crypt)', formatMs(without.median), formatMs(without.p99), String(without.runs), `${(geniso.median / without.median).toFixed(0)}x`],
      ['genisoimage on the same tree (pack only)', formatMs(geniso.median), formatMs(geniso.p99), String(geniso.runs), '1x'],
    ],
  ),
);

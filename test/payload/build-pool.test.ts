import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { readIsoFile, readIsoImage } from '../../src/iso/index.js';
import type { BuildJob } from '../../src/payload/build-job.js';
import { BuildPool, inlineBuilder } from '../../src/payload/build-pool.js';
import { parseInitialization } from '../../src/initialization/index.js';
import { DOMAIN_UUID, settings } from '../helpers/initialization.js';

const SEED_XML = readFileSync(new URL('../../../test/fixtures/seed/initialization.xml', import.meta.url), 'utf8');
const FACTS = { uuid: DOMAIN_UUID, nics: [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }, { mac: '52:54:00:00:00:03' }] };

function job(document: string | object, format?: 'xml' | 'json'): BuildJob {
  return { source: { kind: 'initialization', document, ...(format === undefined ? {} : { format }) }, facts: FACTS, label: 'config-2', writer: 'builtin' };
}

/** A build thread that dies on its first job, as a crash or an exhausted heap would. */
const DYING_THREAD = new URL(`data:text/javascript,${encodeURIComponent("import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => process.exit(3));")}`);

describe('BuildPool', function () {
  this.timeout(20_000);
  let dir: string;
  const pools: BuildPool[] = [];
  function pool(options: Partial<ConstructorParameters<typeof BuildPool>[0]> = {}): BuildPool {
    const p = new BuildPool({ threads: 2, idleMs: 60_000, ...options });
    pools.push(p);
    return p;
  }
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'build-pool-'));
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds on a thread exactly the drive the calling thread builds, password hashed the same way', async () => {
    const [threaded, inline] = await Promise.all([pool().build(job(SEED_XML)), inlineBuilder.build(job(SEED_XML))]);
    assert.equal(threaded.contentDigest, inline.contentDigest);
    assert.deepEqual([...threaded.tree.keys()], [...inline.tree.keys()]);
    assert.equal(threaded.instance.instanceId, `${DOMAIN_UUID}-g1`);
    assert.match(Buffer.from(threaded.tree.get('openstack/latest/user_data')!).toString(), /\$6\$/);
    // The bytes came across whole: our reader finds the label and the files in them.
    const image = readIsoImage(threaded.bytes);
    assert.equal(image.volumeId, 'config-2');
    assert.deepEqual([...image.files.keys()].sort(), [...threaded.tree.keys()].sort());
  });

  it("builds a NoCloud drive on a thread under cidata, whatever the job's config-2 label, the same as the calling thread", async () => {
    const nocloud: BuildJob = { ...job(SEED_XML), source: { kind: 'initialization', document: SEED_XML, driveFormat: 'nocloud' } };
    const [threaded, inline] = await Promise.all([pool().build(nocloud), inlineBuilder.build(nocloud)]);
    assert.equal(threaded.contentDigest, inline.contentDigest);
    assert.equal(threaded.label, 'cidata');
    const image = readIsoImage(threaded.bytes);
    assert.equal(image.volumeId, 'cidata');
    assert.deepEqual([...image.files.keys()].sort(), ['meta-data', 'network-config', 'user-data']);
    assert.equal(threaded.instance.instanceId, `${DOMAIN_UUID}-g1`);
  });

  it('builds parsed settings on the calling thread, passwords kept (a structured clone would empty their Redacted), the same drive as their document', async () => {
    const parsed = parseInitialization(SEED_XML).initialization;
    // A thread that dies on any job: the settings never reach one.
    const [fromSettings, fromDocument] = await Promise.all([pool({ script: DYING_THREAD }).build({ ...job(SEED_XML), source: settings(parsed) }), inlineBuilder.build(job(SEED_XML))]);
    assert.equal(fromSettings.contentDigest, fromDocument.contentDigest);
    assert.match(Buffer.from(fromSettings.tree.get('openstack/latest/user_data')!).toString(), /\$6\$/);
    const saved = await pool({ script: DYING_THREAD }).buildToFile({ ...job(SEED_XML), source: settings(parsed) }, { dir });
    assert.equal(saved.contentDigest, fromDocument.contentDigest);
  });

  it('fails a bad document with INVALID_INITIALIZATION naming the field, and the thread serves the next job', async () => {
    const p = pool({ threads: 1 });
    const bad = SEED_XML.replace('<netmask>255.255.255.0</netmask>', '<netmask>255.0.255.0</netmask>');
    await assert.rejects(p.build(job(bad)), (e: unknown) => {
      assert.ok(e instanceof AgentError);
      assert.equal(e.code, 'INVALID_INITIALIZATION');
      assert.match(e.message, /\/vm\/initialization\/nic_configurations\/nic_configuration\[0\]\/ip\/netmask: "255\.0\.255\.0" is not a valid netmask/);
      assert.equal(e.problems[0]?.path, '/vm/initialization/nic_configurations/nic_configuration[0]/ip/netmask');
      return true;
    });
    assert.equal((await p.build(job(SEED_XML))).instance.instanceId, `${DOMAIN_UUID}-g1`);
    assert.equal(p.size, 1);
  });

  it('writes a build into the directory with mode 0600 (only root reads builds) and answers with its files, without the bytes', async () => {
    const saved = await pool().buildToFile(job(SEED_XML), { dir });
    assert.equal(saved.path.startsWith(`${dir}/${saved.sha256}-`), true);
    assert.equal(statSync(saved.path).mode & 0o777, 0o600);
    assert.equal(statSync(saved.path).size, saved.size);
    const image = await readIsoFile(saved.path);
    assert.equal(image.volumeId, 'config-2');
    assert.deepEqual(saved.files.map((f) => f.path).sort(), [...image.files.keys()].sort());
    assert.equal('bytes' in saved, false);
  });

  it('gives every build its own file, even two builds of the same content', async () => {
    const p = pool();
    const same = { ...job(SEED_XML), facts: { ...FACTS } };
    const [a, b] = await Promise.all([p.buildToFile(same, { dir }), p.buildToFile(same, { dir })]);
    assert.notEqual(a.path, b.path);
    assert.equal(a.contentDigest, b.contentDigest);
    assert.ok(existsSync(a.path) && existsSync(b.path));
  });

  it('removes discarded builds on a thread, an already missing one included', async () => {
    const p = pool();
    const saved = await p.buildToFile(job(SEED_XML), { dir });
    const stray = join(dir, 'stray.iso');
    writeFileSync(stray, 'x');
    p.discard([saved.path, stray, join(dir, 'never-there.iso')]);
    for (let i = 0; i < 100 && (existsSync(saved.path) || existsSync(stray)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(saved.path), false);
    assert.equal(existsSync(stray), false);
  });

  it('fails only the jobs of a thread that dies, with INTERNAL, and starts a new thread for the next job', async () => {
    const p = pool({ threads: 1, script: DYING_THREAD });
    await assert.rejects(p.build(job(SEED_XML)), (e: unknown) => e instanceof AgentError && e.code === 'INTERNAL' && /build thread failed: exited with status 3/.test(e.message));
    assert.equal(p.size, 0);
    // A new thread takes the next job (and dies too): the pool neither hangs nor refuses.
    await assert.rejects(p.build(job(SEED_XML)), (e: unknown) => e instanceof AgentError && e.code === 'INTERNAL');
  });

  it('fails a job it cannot hand to a thread (an object nested 100,000 deep) alone, and keeps every slot for the next jobs', async () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    const p = pool({ threads: 1 });
    // Ordinary builds queued before and after: the failure must not take the pool down
    // or leave a slot taken (at most two jobs per thread: four lost slots would hang it).
    const around = [p.build(job(SEED_XML)), ...Array.from({ length: 4 }, () => p.build(job(deep, 'json'))), p.build(job(SEED_XML))];
    const outcomes = await Promise.all(around.map((b) => b.then(() => 'built', (e: unknown) => (e instanceof AgentError ? `${e.code}: ${e.message}` : String(e)))));
    assert.equal(outcomes[0], 'built');
    assert.equal(outcomes[5], 'built');
    for (const o of outcomes.slice(1, 5)) assert.match(o, /^INTERNAL: the request could not be handed to a build thread: Maximum call stack/);
    assert.equal((await Promise.all(Array.from({ length: 4 }, () => p.build(job(SEED_XML))))).length, 4);
  });

  it('stops a thread that has had no work for idleMs', async () => {
    const p = pool({ idleMs: 50 });
    await p.build(job(SEED_XML));
    assert.equal(p.size, 1);
    for (let i = 0; i < 100 && p.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.size, 0);
    assert.equal((await p.build(job(SEED_XML))).instance.instanceId, `${DOMAIN_UUID}-g1`, 'a new thread starts for new work');
  });

  it('uses at most its number of threads however many jobs wait', async () => {
    const p = pool({ threads: 2 });
    const results = await Promise.all(Array.from({ length: 12 }, () => p.build(job(SEED_XML))));
    assert.equal(results.length, 12);
    assert.ok(p.size <= 2);
  });

  it('fails queued and later jobs with SHUTTING_DOWN once closed', async () => {
    const p = pool({ threads: 1 });
    const jobs = Array.from({ length: 6 }, () => p.build(job(SEED_XML)).then(() => 'built', (e: unknown) => (e instanceof AgentError ? e.code : 'other')));
    await p.close();
    const outcomes = await Promise.all(jobs);
    assert.ok(outcomes.includes('SHUTTING_DOWN'), outcomes.join(','));
    assert.ok(outcomes.every((o) => o === 'SHUTTING_DOWN' || o === 'INTERNAL' || o === 'built'), outcomes.join(','));
    await assert.rejects(p.build(job(SEED_XML)), (e: unknown) => e instanceof AgentError && e.code === 'SHUTTING_DOWN');
  });
});

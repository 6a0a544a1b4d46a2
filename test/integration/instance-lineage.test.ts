/**
 * Instance generations and Run Once on real libvirt and QEMU, on both kinds of host: which
 * instance-id each drive gets as the settings change and come back, what survives a
 * detach or the loss of the agent's record, the host-key rule, and a drive that is in
 * one run of the domain only. What a guest does with these drives is test/e2e's part.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../agent/daemon/store-setup.js';
import { USER_DATA_PATH } from '../../src/cloudinit/index.js';
import { parseInitialization } from '../../src/initialization/index.js';
import { readIsoFile } from '../../src/iso/index.js';
import type { PayloadStore } from '../../src/payload/store.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import { METADATA_URI, parseRecord } from '../../src/vm/record.js';
import { VmService } from '../../src/vm/service.js';
import { domainXml, LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { settings } from '../helpers/initialization.js';

const SEED = parseInitialization(readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/seed/initialization.xml'))).initialization;
/** The seed's settings without its regenerate_ssh_keys, so that the agent's host-key rule decides. */
const { regenerateSshKeys: _asked, ...BASE } = SEED;
const OTHER = { ...BASE, hostName: 'renamed.example.com' };

/** The host-key setting the drive's user data gives cloud-init. */
async function deletesHostKeys(path: string): Promise<boolean> {
  const userData = Buffer.from((await readIsoFile(path)).files.get(USER_DATA_PATH)!).toString('utf8');
  const m = /^ssh_deletekeys: (true|false)$/m.exec(userData);
  assert.ok(m, 'user data sets ssh_deletekeys');
  return m[1] === 'true';
}

for (const target of LIBVIRT_TARGETS) describe(`instance generations and Run Once on real libvirt and QEMU (${target.title})`, function () {
  this.timeout(180_000);
  let lv: TestLibvirt;
  let stateDir = '';
  let store: PayloadStore;
  let service: VmService;

  before(async () => {
    lv = await target.open();
    stateDir = mkdtempSync(join(tmpdir(), 'lineage-state-'));
    ({ store } = await openStore(lv.hv, { stateDir, isoGroup: '' }));
    service = new VmService({ hv: lv.hv, store, writer: 'builtin' });
  });
  after(async () => {
    await (lv as TestLibvirt | undefined)?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function ourCdroms(name: string, live: boolean) {
    const dom = await lv.hv.lookup(name);
    const ours = (await store.readRecord(dom.uuid))?.current?.target;
    return describeDomain(await lv.hv.getXml(dom, { inactive: !live })).disks.filter((d) => d.device === 'cdrom' && d.target === ours);
  }

  it('keeps the instance while the settings stay, and counts a new one when they change, come back, or a re-initialization is asked', async () => {
    const dom = await lv.hv.define(domainXml({ name: 'lineage-vm', machine: 'q35' }));
    const id = (n: number) => `${dom.uuid}-g${String(n)}`;
    const seen: [string, number, string, boolean][] = [];
    const run = async (init: typeof BASE, options = {}) => {
      const r = await service.start('lineage-vm', settings(init), options);
      seen.push([r.instance.instanceId, r.instance.generation, r.instance.reason, r.changed]);
      await lv.hv.destroy(dom);
      return r;
    };
    const first = await run(BASE);
    assert.equal(await deletesHostKeys(first.payload.path), true, "the domain's first instance gets host keys of its own");
    await run(BASE);
    const changed = await run(OTHER);
    assert.equal(await deletesHostKeys(changed.payload.path), false, 'a re-initialization keeps the host keys');
    await run(BASE);
    const renewed = await run(BASE, { reinitialize: true });
    assert.equal(await deletesHostKeys(renewed.payload.path), false);
    const asked = await run(SEED);
    assert.equal(await deletesHostKeys(asked.payload.path), true, 'unless the request asks for new ones');
    assert.deepEqual(seen, [
      [id(1), 1, 'first instance', true],
      [id(1), 1, 'unchanged', false],
      [id(2), 2, 'settings changed', true],
      [id(3), 3, 'settings changed', true],
      [id(4), 4, 'reinitialize requested', true],
      [id(5), 5, 'settings changed', true],
    ]);
    const mark = parseRecord((await lv.hv.getMetadata(dom, METADATA_URI, { config: true }))!);
    assert.deepEqual([mark.instanceId, mark.generation], [id(5), '5'], "the domain's metadata names the instance too");
    assert.equal((await service.get('lineage-vm')).lineage?.generation, 5);
  });

  it('keeps host-key regeneration for a domain that never ran, however often its settings change first', async () => {
    await lv.hv.define(domainXml({ name: 'clone-vm', machine: 'q35' }));
    await service.attach('clone-vm', settings(BASE));
    const second = await service.attach('clone-vm', settings(OTHER));
    assert.equal(second.instance.generation, 2);
    assert.equal(second.instance.firstInstance, true);
    assert.equal(await deletesHostKeys(second.payload.path), true);
  });

  it('finds the last instance in the domain metadata when the agent record is lost', async () => {
    const dom = await lv.hv.define(domainXml({ name: 'lost-record-vm', machine: 'q35' }));
    await service.start('lost-record-vm', settings(BASE));
    await lv.hv.destroy(dom);
    await store.removeRecord(dom.uuid);
    const next = await service.start('lost-record-vm', settings(OTHER));
    assert.deepEqual([next.instance.instanceId, next.instance.reason], [`${dom.uuid}-g2`, 'settings changed'], 'never g1 again with other settings');
    await lv.hv.destroy(dom);
  });

  it('Run Once: the drive is in that run only; afterwards the definition has none, its image is gone, the lineage stays', async () => {
    const dom = await lv.hv.define(domainXml({ name: 'run-once-vm' }));
    const once = await service.start('run-once-vm', settings(SEED), { persistent: false });
    assert.equal(once.payload.runOnce, true);
    assert.deepEqual((await ourCdroms('run-once-vm', true)).map((d) => d.source), [once.payload.path], 'the running domain has the drive');
    assert.deepEqual(await ourCdroms('run-once-vm', false), [], 'its definition does not');
    assert.equal(await lv.hv.getMetadata(dom, METADATA_URI, { config: true }), null);

    await lv.hv.destroy(dom);
    const after = await service.get('run-once-vm');
    assert.equal(after.payload, null);
    assert.equal(after.lineage?.instanceId, once.instance.instanceId);
    assert.equal(existsSync(once.payload.path), false);
    assert.deepEqual(await service.list().then((l) => l.filter((r) => r.uuid === dom.uuid)), []);

    await lv.hv.start(dom, { paused: true });
    assert.ok(describeDomain(await lv.hv.getXml(dom, { inactive: false })).disks.every((d) => d.source !== once.payload.path), 'a plain start has no drive');
    await lv.hv.destroy(dom);

    const again = await service.start('run-once-vm', settings(SEED), { persistent: false });
    assert.deepEqual([again.instance.instanceId, again.instance.reason], [once.instance.instanceId, 'unchanged']);
    await lv.hv.destroy(dom);
  });
});

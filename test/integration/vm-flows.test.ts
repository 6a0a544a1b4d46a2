/**
 * The VM flows against real libvirt 9.0 and real QEMU (TCG here), on both kinds of host:
 * the embedded driver and a real libvirtd with QEMU as libvirt-qemu. The seed's two test
 * cases, i440fx and q35, idempotency, failures that must leave nothing behind, media
 * change and hot-plug, and 20 domains at once.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync, readlinkSync } from 'node:fs';
import { AgentError } from '../../src/errors.js';
import { parseInitialization } from '../../src/initialization/index.js';
import { readIsoFile, writeIsoImage, type IsoWriter } from '../../src/iso/index.js';
import type { PayloadStore } from '../../src/payload/store.js';
import { openStore } from '../../agent/daemon/store-setup.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import { METADATA_URI, parseRecord } from '../../src/vm/record.js';
import { VmService } from '../../src/vm/service.js';
import { CONFIG_TABLE } from '../../src/config/config.js';
import { buildDriveImage } from '../../src/payload/build-drive.js';
import { BuildPool, inlineBuilder, type DriveBuilder } from '../../src/payload/build-pool.js';
import type { BuildSource } from '../../src/payload/drive-source.js';
import { domainXml, LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { settings } from '../helpers/initialization.js';

const procCmdline = (pid: string) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
};
const procLink = (pid: string, fd: string) => {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return '';
  }
};

const SEED_XML = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/seed/initialization.xml'), 'utf8');
const SEED = parseInitialization(SEED_XML).initialization;
/** The seed's settings as a request carries them, with another host name when asked. */
const seedRequest = (hostName?: string): BuildSource => ({
  kind: 'initialization',
  document: hostName === undefined ? SEED_XML : SEED_XML.replace('<address>cloudInitInstanceName</address>', `<address>${hostName}</address>`),
  format: 'xml',
});
const MACS = ['52:54:00:12:00:01', '52:54:00:12:00:02', '52:54:00:12:00:03'];

for (const target of LIBVIRT_TARGETS) describe(`VM flows on real libvirt and QEMU (${target.title})`, function () {
  this.timeout(180_000);
  let lv: TestLibvirt;
  let stateDir = '';
  let store: PayloadStore;
  let service: VmService;
  let builder: BuildPool;
  let installIso = '';
  const warnings: string[] = [];

  before(async () => {
    lv = await target.open();
    stateDir = mkdtempSync(join(tmpdir(), 'vm-flows-state-'));
    // The daemon's own set-up: images in QEMU's group, checked readable by QEMU.
    ({ store } = await openStore(lv.hv, { stateDir, isoGroup: '' }));
    // The daemon's build path: documents parsed and built on its build threads.
    builder = new BuildPool({ threads: CONFIG_TABLE.buildThreads.default, idleMs: CONFIG_TABLE.buildThreadIdleMs.default });
    service = new VmService({ hv: lv.hv, store, builder, writer: 'builtin', warn: (m) => warnings.push(m) });
    installIso = join(stateDir, 'install.iso');
    writeFileSync(installIso, writeIsoImage({ files: new Map([['README', new TextEncoder().encode('install media')]]) }, { volumeId: 'DEBIAN_12' }));
  });
  after(async () => {
    await (builder as BuildPool | undefined)?.close();
    // before() may have failed before opening it.
    await (lv as TestLibvirt | undefined)?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const images = () => readdirSync(join(stateDir, 'images'));

  async function liveDisks(name: string) {
    const dom = await lv.hv.lookup(name);
    return describeDomain(await lv.hv.getXml(dom, { inactive: false })).disks;
  }

  it("runs once with cloud-init on an i440fx domain: IDE CD-ROM, started paused, verified, resumed (seed test 1)", async () => {
    await lv.hv.define(domainXml({ name: 'pc-vm', macs: MACS }));
    const result = await service.start('pc-vm', seedRequest());
    assert.equal(result.payload.bus, 'ide');
    assert.equal(await lv.hv.state(result.domain), 'running');
    const disks = await liveDisks('pc-vm');
    assert.deepEqual(disks.map((d) => [d.device, d.bus, d.target, d.source]), [['cdrom', 'ide', result.payload.target, result.payload.path]]);
    const image = await readIsoFile(result.payload.path);
    assert.equal(image.volumeId, 'config-2');
    const meta = JSON.parse(Buffer.from(image.files.get('openstack/latest/meta_data.json')!).toString()) as { uuid: string };
    assert.equal(meta.uuid, `${result.domain.uuid}-g1`, "the domain's first generation is the instance-id, never the bare UUID");
    const net = Buffer.from(image.files.get('openstack/latest/network_data.json')!).toString();
    for (const mac of MACS) assert.ok(net.includes(mac), `network_data.json matches ${mac}`);
    const record = parseRecord((await lv.hv.getMetadata(result.domain, METADATA_URI, { config: true }))!);
    assert.equal(record.path, result.payload.path);
    assert.equal(record.sha256, result.payload.sha256);
  });

  it('keeps the install CD and its boot order on a q35 domain and adds a SATA drive beside it (seed test 2)', async () => {
    await lv.hv.define(domainXml({ name: 'q35-vm', machine: 'q35', installCd: installIso, macs: MACS }));
    const result = await service.start('q35-vm', seedRequest());
    const disks = await liveDisks('q35-vm');
    assert.equal(disks.length, 2);
    assert.deepEqual(disks[0], { device: 'cdrom', bus: 'sata', target: 'sda', source: installIso, bootOrder: 1 });
    assert.deepEqual(disks[1], { device: 'cdrom', bus: 'sata', target: 'sdb', source: result.payload.path });
    const persistent = describeDomain(await lv.hv.getXml(result.domain, { inactive: true })).disks;
    assert.equal(persistent.length, 2, 'later boots keep the drive');
  });

  it('changes nothing when the same request comes again', async () => {
    const dom = await lv.hv.lookup('q35-vm');
    await lv.hv.destroy(dom);
    const before = images();
    const again = await service.start('q35-vm', seedRequest());
    assert.equal(again.changed, false);
    assert.equal((await liveDisks('q35-vm')).length, 2);
    assert.deepEqual(images(), before);
  });

  it('changes the media of a running domain for a re-initialization, removing the old image', async () => {
    const old = (await store.readRecord((await lv.hv.lookup('pc-vm')).uuid))!.current!;
    const result = await service.attach('pc-vm', settings({ ...SEED, instanceId: 'reinit-1' }));
    assert.equal(result.changed, true);
    assert.equal(result.payload.target, old.target);
    assert.equal((await liveDisks('pc-vm'))[0]?.source, result.payload.path);
    assert.equal(existsSync(old.path), false);
  });

  it('hot-plugs a SCSI CD-ROM into a running domain with virtio-scsi, and refuses IDE hot-plug clearly', async () => {
    const scsi = await lv.hv.define(domainXml({ name: 'scsi-vm', virtioScsi: true }));
    await lv.hv.start(scsi, { paused: false });
    const result = await service.attach('scsi-vm', seedRequest());
    assert.equal(result.payload.bus, 'scsi');
    assert.equal((await liveDisks('scsi-vm')).find((d) => d.target === result.payload.target)?.source, result.payload.path);
    const ide = await lv.hv.define(domainXml({ name: 'ide-running' }));
    await lv.hv.start(ide, { paused: false });
    await assert.rejects(service.attach('ide-running', seedRequest()), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE');
    assert.equal((await liveDisks('ide-running')).length, 0);
  });

  it('detaches: the CD-ROM, its record and the image go, the install CD stays', async () => {
    const dom = await lv.hv.lookup('q35-vm');
    const path = (await store.readRecord(dom.uuid))!.current!.path;
    await service.detach('q35-vm');
    const disks = await liveDisks('q35-vm');
    assert.equal(disks.find((d) => d.source === path), undefined);
    assert.equal(disks[0]?.source, installIso);
    assert.equal(existsSync(path), false);
    assert.equal((await store.readRecord(dom.uuid))?.current, undefined);
    assert.equal(await lv.hv.getMetadata(dom, METADATA_URI, { config: true }), null);
  });

  it('reports a missing domain as DOMAIN_NOT_FOUND with libvirt code 42, and writes nothing', async () => {
    const before = images();
    await assert.rejects(service.start('no-such-domain', seedRequest()), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_NOT_FOUND' && e.details['libvirtCode'] === 42);
    assert.deepEqual(images(), before);
  });

  it('never attaches an image that does not read back as built', async () => {
    const ref = await lv.hv.define(domainXml({ name: 'bad-writer-vm' }));
    const liar: IsoWriter = { name: 'builtin', write: async (tree) => writeIsoImage(tree, { volumeId: 'NOT-CONFIG' }) };
    const lyingBuilder: DriveBuilder = { ...inlineBuilder, build: (job) => buildDriveImage(SEED, job.facts, { writer: liar, label: job.label }, job.lineage) };
    const broken = new VmService({ hv: lv.hv, store, builder: lyingBuilder, writer: 'builtin' });
    const before = images();
    await assert.rejects(broken.start('bad-writer-vm', seedRequest()), (e: unknown) => e instanceof AgentError && e.code === 'ISO_VERIFY_FAILED');
    assert.equal(await lv.hv.state(ref), 'shutoff');
    assert.deepEqual(describeDomain(await lv.hv.getXml(ref, { inactive: true })).disks, []);
    assert.deepEqual(images(), before);
  });

  it('leaves a domain that QEMU cannot start shut off and as it was', async () => {
    const ref = await lv.hv.define(domainXml({ name: 'too-big-vm', memoryMiB: 64 * 1024 * 1024 }));
    const before = images();
    await assert.rejects(service.start('too-big-vm', seedRequest()), (e: unknown) => e instanceof AgentError && e.code === 'LIBVIRT_ERROR');
    assert.equal(await lv.hv.state(ref), 'shutoff');
    assert.deepEqual(describeDomain(await lv.hv.getXml(ref, { inactive: true })).disks, []);
    assert.equal(await lv.hv.getMetadata(ref, METADATA_URI, { config: true }), null);
    assert.deepEqual(images(), before);
    assert.equal(await store.readRecord(ref.uuid), undefined);
    assert.deepEqual(warnings, [], 'every rollback step succeeded');
  });

  it('drops the drive of a domain undefined behind its back, and only that one', async () => {
    const gone = await lv.hv.define(domainXml({ name: 'undefined-later-vm', macs: MACS }));
    const kept = await lv.hv.define(domainXml({ name: 'kept-vm', macs: MACS }));
    const goneDrive = await service.attach('undefined-later-vm', seedRequest());
    const keptDrive = await service.attach('kept-vm', seedRequest());
    await lv.hv.undefine(gone);
    assert.deepEqual(await service.sweepVanished(), [gone.uuid]);
    assert.equal(existsSync(goneDrive.payload.path), false);
    assert.equal(await store.readRecord(gone.uuid), undefined);
    assert.equal(existsSync(keptDrive.payload.path), true);
    assert.equal((await store.readRecord(kept.uuid))?.current?.path, keptDrive.payload.path);
    assert.deepEqual(await service.sweepVanished(), [], 'nothing more to do');
  });

  it('detaches right after VM.start, again and again: always out of the definition; an eject QEMU refuses waits for the run to end, its image kept until then', async () => {
    const dom = await lv.hv.define(domainXml({ name: 'detach-loop-vm', macs: MACS }));
    const runs = 10;
    let deferred = 0;
    for (let i = 0; i < runs; i++) {
      const started = await service.start('detach-loop-vm', seedRequest(`loop${String(i)}`));
      const result = await service.detach('detach-loop-vm');
      assert.equal(describeDomain(await lv.hv.getXml(dom, { inactive: true })).disks.find((d) => d.source === started.payload.path), undefined, 'the definition no longer has it');
      assert.equal(await lv.hv.getMetadata(dom, METADATA_URI, { config: true }), null);
      const record = await store.readRecord(dom.uuid);
      assert.equal(record?.pending, undefined, 'no half-done change is left in the record');
      if (result.deferred === null) {
        assert.equal(existsSync(started.payload.path), false);
        assert.equal(record?.current, undefined);
      } else {
        deferred++;
        assert.match(result.deferred, /keeps the drive until it stops \(QEMU refused the eject: .*Tray of device/);
        assert.equal(record?.current?.path, started.payload.path);
        assert.equal(record.current.runOnce, true, 'the drive is now this run only');
        assert.equal((await liveDisks('detach-loop-vm')).find((d) => d.target === started.payload.target)?.source, started.payload.path, 'libvirt still shows it live');
        const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && procCmdline(p).includes('guest=detach-loop-vm,'));
        assert.equal(qemu.length, 1);
        assert.ok(readdirSync(`/proc/${qemu[0]!}/fd`).some((fd) => procLink(qemu[0]!, fd) === started.payload.path), 'QEMU still holds it');
        assert.equal(existsSync(started.payload.path), true, 'an image QEMU holds is never deleted');
      }
      await lv.hv.destroy(dom);
      assert.deepEqual(await service.endFinishedRuns(), result.deferred === null ? [] : [dom.uuid]);
      assert.equal(existsSync(started.payload.path), false, 'once the run ended, the image is gone');
      assert.equal((await store.readRecord(dom.uuid))?.current, undefined);
    }
    console.log(`      detach right after start under ${target.title}: ${String(runs - deferred)} of ${String(runs)} ejected at once, ${String(deferred)} refused by QEMU (tray closed) and finished when the run ended, each consistent`);
  });

  it('starts 20 domains with payloads in parallel, each verified', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `par-${String(i).padStart(2, '0')}`);
    for (const name of names) await lv.hv.define(domainXml({ name, machine: names.indexOf(name) % 2 === 0 ? 'pc' : 'q35' }));
    const started = performance.now();
    const results = await Promise.all(names.map((name) => service.start(name, seedRequest(name))));
    const seconds = (performance.now() - started) / 1000;
    for (const r of results) {
      assert.equal(await lv.hv.state(r.domain), 'running');
      assert.equal((await liveDisks(r.domain.name)).find((d) => d.target === r.payload.target)?.source, r.payload.path);
      assert.equal(r.verified.liveSource, true);
    }
    console.log(`      20 parallel VM.start under ${target.title}: ${seconds.toFixed(1)} s`);
  });
});

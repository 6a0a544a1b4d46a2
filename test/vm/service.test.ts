/**
 * The flows' decisions and error paths against the in-memory libvirt stand-in. The same
 * flows run against real QEMU in test/integration/; here failures are injected at each
 * step to pin the rollbacks.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { readIsoFile } from '../../src/iso/index.js';
import { PayloadStore } from '../../src/payload/store.js';
import { VmService, type Notify } from '../../src/vm/service.js';
import { FakeDomains } from '../fakes/fake-domains.js';
import { seedInitialization } from '../cloudinit/cases.js';
import { initialization, settings } from '../helpers/initialization.js';

const VM = { uuid: '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b', name: 'seed-vm' };
const INSTALL_CD = { device: 'cdrom', bus: 'sata', target: 'sda', source: '/isos/debian.iso' };
const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];

describe('vm service flows (libvirt stand-in)', () => {
  let dir = '';
  let hv: FakeDomains;
  let store: PayloadStore;
  let service: VmService;
  let events: [string, Record<string, unknown>][];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-service-'));
    hv = new FakeDomains();
    hv.define(VM, { machine: 'pc-q35-7.2', macs: MACS, disks: [{ ...INSTALL_CD }] });
    store = new PayloadStore({ dir });
    await store.init();
    events = [];
    const notify: Notify = (method, params) => events.push([method, params]);
    service = new VmService({ hv, store, writer: 'builtin', notify });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const images = () => readdirSync(join(dir, 'images'));
  const configDisks = () => hv.domain(VM.uuid).config.disks;

  it('VM.start with driveFormat nocloud attaches a cidata drive of the same lineage; going back to config-2 is a new instance', async () => {
    const document = { configdrive: 1, hostname: 'nc1', nics: [{ name: 'eth0', ipv4: { boot: 'dhcp' } }] };
    const first = await service.start('seed-vm', { kind: 'initialization', document, driveFormat: 'nocloud' });
    assert.equal(first.payload.label, 'cidata');
    assert.equal(first.instance.instanceId, `${VM.uuid}-g1`);
    const image = await readIsoFile(first.payload.path);
    assert.equal(image.volumeId, 'cidata');
    assert.deepEqual([...image.files.keys()].sort(), ['meta-data', 'network-config', 'user-data', 'vendor-data']);
    assert.match(Buffer.from(image.files.get('meta-data')!).toString(), new RegExp(`^instance-id: "${VM.uuid}-g1"$`, 'm'));
    await hv.destroy(VM);
    const again = await service.start('seed-vm', { kind: 'initialization', document, driveFormat: 'nocloud' });
    assert.equal(again.changed, false, 'the same settings in the same format: the same drive');
    await hv.destroy(VM);
    const back = await service.start('seed-vm', { kind: 'initialization', document });
    assert.deepEqual([back.payload.label, back.instance.instanceId], ['config-2', `${VM.uuid}-g2`]);
  });

  it('VM.start puts a SATA CD-ROM in the definition, starts paused, verifies, resumes; the install CD stays', async () => {
    const result = await service.start('seed-vm', settings(seedInitialization()));
    assert.equal(result.changed, true);
    assert.equal(result.payload.target, 'sdb');
    assert.equal(result.payload.bus, 'sata');
    assert.equal(result.payload.instanceId, `${VM.uuid}-g1`);
    assert.deepEqual(result.instance, { instanceId: `${VM.uuid}-g1`, generation: 1, reason: 'first instance', firstInstance: true });
    assert.equal(hv.domain(VM.uuid).state, 'running');
    assert.deepEqual(configDisks(), [INSTALL_CD, { device: 'cdrom', bus: 'sata', target: 'sdb', source: result.payload.path }]);
    const order = hv.calls.filter((c) => /^(attachDevice|setMetadata|start|resume)/.test(c));
    // The VM.initialized channel, then the CD-ROM: both in the definition before the start.
    assert.deepEqual(order, ['attachDevice config', 'attachDevice config', 'setMetadata config', 'start paused', 'resume']);
    const image = await readIsoFile(result.payload.path);
    assert.equal(image.volumeId, 'config-2');
    assert.ok(image.files.has('openstack/latest/meta_data.json'));
    assert.deepEqual((await store.readRecord(VM.uuid))?.current, result.payload);
    assert.deepEqual(events.map(([m]) => m), ['Payload.attached']);
  });

  it('repeating VM.start with the same settings changes nothing and adds no device', async () => {
    const first = await service.start(VM.uuid, settings(seedInitialization()));
    await hv.destroy(VM);
    const again = await service.start(VM.uuid, settings(seedInitialization()));
    assert.equal(again.changed, false);
    assert.equal(again.payload.path, first.payload.path);
    assert.equal(configDisks().length, 2);
    assert.equal(images().length, 1);
    assert.equal(events.length, 1, 'no second notification for an unchanged drive');
  });

  it('warns that a guest keeps its cached instance when a new instance-id follows the domain UUID', async () => {
    const first = await service.start(VM.uuid, settings({ ...seedInitialization(), instanceId: VM.uuid }));
    assert.equal(first.warnings.length, 1);
    assert.match(first.warnings[0] ?? '', /instance-id 6f1c7e2a-\S+ is the domain UUID.*never read a later drive/);
    await hv.destroy(VM);
    const renewed = await service.start(VM.uuid, settings(seedInitialization()));
    assert.equal(renewed.payload.instanceId, `${VM.uuid}-g2`);
    assert.equal(renewed.warnings.length, 1);
    assert.match(renewed.warnings[0] ?? '', /this guest's cloud-init ran with instance-id 6f1c7e2a-\S+, the domain UUID: it keeps that instance from its cache/);
    await hv.destroy(VM);
    const third = await service.start(VM.uuid, settings({ ...seedInitialization(), instanceId: 'rebuild-3' }));
    assert.deepEqual(third.warnings, [], 'once the instance-id is not the UUID, a new one is read');
    await hv.destroy(VM);
    await service.detach(VM.uuid);
    const back = await service.start(VM.uuid, settings(seedInitialization()));
    assert.deepEqual([back.instance.instanceId, back.instance.reason, back.warnings], ['rebuild-3', 'unchanged', []], 'the lineage outlives the detach');
  });

  it('a failure before resume destroys the domain and restores definition, record and files', async () => {
    hv.failures.set('resume', new AgentError('LIBVIRT_ERROR', 'injected resume failure'));
    await assert.rejects(service.start(VM.name, settings(seedInitialization())), /injected resume failure/);
    assert.equal(hv.domain(VM.uuid).state, 'shutoff');
    assert.deepEqual(configDisks(), [INSTALL_CD]);
    assert.equal(hv.domain(VM.uuid).config.metadata.size, 0);
    assert.deepEqual(images(), []);
    assert.equal(await store.readRecord(VM.uuid), undefined);
    assert.deepEqual(events, []);
  });

  it('commits the record before the guest runs: a full disk at that write leaves the domain shut off and says so, never "failed" while it runs', async () => {
    const first = await service.start(VM.name, settings(seedInitialization()));
    await hv.destroy(VM);
    // The store's commit of the new drive (the write that names it current) fails.
    const write = store.writeRecord.bind(store);
    store.writeRecord = async (record, options) => {
      if (record.pending?.op !== 'attach' && record.current !== undefined && record.current.path !== first.payload.path) {
        throw new AgentError('IO_ERROR', 'Cannot write the record: ENOSPC', { details: { errno: 'ENOSPC' } });
      }
      return write(record, options);
    };
    await assert.rejects(service.start(VM.name, settings(initialization({ hostName: 'other' }))), (e: unknown) => e instanceof AgentError && e.code === 'IO_ERROR');
    assert.equal(hv.domain(VM.uuid).state, 'shutoff', 'the guest never ran with a drive the record does not name');
    assert.ok(!hv.calls.slice(hv.calls.lastIndexOf('start paused')).includes('resume'));
    assert.deepEqual((await store.readRecord(VM.uuid))?.current, first.payload);
    assert.equal((await store.readRecord(VM.uuid))?.pending, undefined);
    assert.deepEqual(configDisks()[1], { device: 'cdrom', bus: 'sata', target: 'sdb', source: first.payload.path });
    assert.deepEqual(images(), [first.payload.path.split('/').pop()]);
  });

  it('journals the resume: the record names the drive with a pending resume while the guest is paused, and nothing pending once it runs', async () => {
    const seen: (string | undefined)[] = [];
    const write = store.writeRecord.bind(store);
    store.writeRecord = async (record, options) => {
      seen.push(`${record.pending?.op ?? 'none'}${record.pending?.start === true ? '+start' : ''} ${hv.domain(VM.uuid).state}`);
      return write(record, options);
    };
    await service.start(VM.name, settings(seedInitialization()));
    assert.deepEqual(seen, ['attach+start shutoff', 'resume paused', 'none running']);
    await hv.destroy(VM);
    seen.length = 0;
    await service.start(VM.name, settings(seedInitialization()));
    assert.deepEqual(seen, ['resume shutoff', 'resume paused', 'none running'], 'the same drive again journals its start too');
  });

  it('resolves a change a crash left half done before making the next one, and refuses with DOMAIN_STATE while libvirt cannot', async () => {
    const first = await service.start(VM.name, settings(seedInitialization()));
    await hv.destroy(VM);
    // A crash between journaling a detach and making it.
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: first.payload, pending: { op: 'detach', startedAt: 'x' } });
    hv.failures.set('state', new AgentError('LIBVIRT_ERROR', 'cannot acquire state change lock'));
    await assert.rejects(service.start(VM.name, settings(initialization({ hostName: 'other' }))), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE' && /half done by a crash .*cannot acquire state change lock/.test(e.message));
    assert.equal((await store.readRecord(VM.uuid))?.pending?.op, 'detach', 'nothing was built on top of it');
    const again = await service.start(VM.name, settings(initialization({ hostName: 'other' })));
    assert.equal(again.changed, true);
    assert.equal((await store.readRecord(VM.uuid))?.pending, undefined);
    assert.deepEqual(images(), [again.payload.path.split('/').pop()], 'the detached drive went first, then the new one came');
  });

  it('a failure while changing the definition leaves the previous drive in place', async () => {
    const first = await service.start(VM.name, settings(seedInitialization()));
    await hv.destroy(VM);
    hv.failures.set('setMetadata', new AgentError('LIBVIRT_ERROR', 'injected metadata failure'));
    await assert.rejects(service.start(VM.name, settings(initialization({ hostName: 'other' }))), /injected metadata failure/);
    assert.deepEqual(configDisks()[1], { device: 'cdrom', bus: 'sata', target: 'sdb', source: first.payload.path });
    assert.deepEqual(images(), [first.payload.path.split('/').pop()]);
    assert.deepEqual((await store.readRecord(VM.uuid))?.current, first.payload);
  });

  it('refuses VM.start on a running domain, and Payload.attach where a SATA CD-ROM would need hot-plug', async () => {
    await hv.start(VM, { paused: false });
    await assert.rejects(service.start(VM.name, settings(seedInitialization())), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE' && /is running/.test(e.message));
    await assert.rejects(service.attach(VM.name, settings(seedInitialization())), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE' && /cannot be hot-plugged/.test(e.message));
    assert.deepEqual(images(), []);
    assert.equal(await store.readRecord(VM.uuid), undefined);
  });

  it('Payload.attach on a running domain changes the media of our CD-ROM and drops the old image', async () => {
    const first = await service.start(VM.name, settings(seedInitialization()));
    const second = await service.attach(VM.name, settings(initialization({ hostName: 'renamed', instanceId: 'iid-2' })));
    assert.equal(second.changed, true);
    assert.equal(second.payload.target, 'sdb');
    assert.notEqual(second.payload.path, first.payload.path);
    assert.ok(hv.calls.includes('updateDevice live+config'));
    assert.equal(hv.domain(VM.uuid).live?.disks[1]?.source, second.payload.path);
    assert.equal(existsSync(first.payload.path), false);
    assert.equal(second.verified.liveSource, true);
  });

  it('Payload.detach removes our CD-ROM and image and nothing else; the record keeps only the lineage', async () => {
    const attached = await service.attach(VM.name, settings(seedInitialization()));
    const result = await service.detach(VM.name);
    assert.equal(result.removed?.path, attached.payload.path);
    assert.deepEqual(configDisks(), [INSTALL_CD]);
    assert.deepEqual(images(), []);
    const kept = await store.readRecord(VM.uuid);
    assert.deepEqual(Object.keys(kept ?? {}).sort(), ['lineage', 'name', 'uuid', 'version']);
    assert.deepEqual(await service.list(), [], 'a lineage alone is no drive');
    assert.deepEqual(events.map(([m]) => m), ['Payload.attached', 'Payload.removed']);
    await assert.rejects(service.detach(VM.name), (e: unknown) => e instanceof AgentError && e.code === 'PAYLOAD_NOT_FOUND');
  });

  it('Payload.detach of a running domain whose eject QEMU refuses: out of the definition now, out of the guest when its run ends', async () => {
    const started = await service.start(VM.name, settings(seedInitialization()));
    hv.failures.set('updateDevice', new AgentError('LIBVIRT_ERROR', "internal error: unable to execute QEMU command 'blockdev-remove-medium': Tray of device 'sata0-0-1' is not open"));
    const result = await service.detach(VM.name);
    assert.match(result.deferred ?? '', /the running guest keeps the drive until it stops/);
    assert.deepEqual(configDisks(), [INSTALL_CD], 'the definition no longer has it');
    assert.equal(hv.domain(VM.uuid).live?.disks[1]?.source, started.payload.path, 'the running domain still has it');
    assert.equal((await store.readRecord(VM.uuid))?.current?.runOnce, true);
    assert.ok(existsSync(started.payload.path), 'QEMU holds the image: it stays');
    assert.deepEqual(await service.endFinishedRuns(), [], 'not while the domain runs');
    await hv.destroy(VM);
    assert.deepEqual(await service.endFinishedRuns(), [VM.uuid]);
    assert.equal(existsSync(started.payload.path), false);
    assert.deepEqual(Object.keys((await store.readRecord(VM.uuid)) ?? {}).sort(), ['lineage', 'name', 'uuid', 'version']);
    assert.deepEqual(events.map(([m, p]) => [m, p['reason']]), [['Payload.attached', 'first instance'], ['Payload.removed', 'run ended']]);
  });

  it('Payload.attach on a running domain whose new drive QEMU refuses after taking the old one out: the definition gets it, the reply says the run has none, and later changes in that run go to the definition only', async () => {
    const first = await service.start(VM.name, settings(seedInitialization()));
    hv.failures.set('updateDevice', new AgentError('LIBVIRT_ERROR', "internal error: unable to execute QEMU command 'blockdev-insert-medium': Tray of the device is not open"));
    const second = await service.attach(VM.name, settings(initialization({ hostName: 'renamed' })));
    assert.match(second.deferred ?? '', /CD-ROM stays empty until it stops \(QEMU took the previous drive out and refused this one: .*blockdev-insert-medium/);
    assert.equal(second.verified.liveSource, false, 'the live view is not what the guest has');
    assert.equal(configDisks()[1]?.source, second.payload.path, 'the next start reads the new drive');
    assert.equal((await store.readRecord(VM.uuid))?.current?.liveEmpty, true);
    assert.equal(existsSync(first.payload.path), false, 'QEMU no longer holds the drive it took out');
    assert.equal(existsSync(second.payload.path), true);

    const before = hv.calls.length;
    const third = await service.attach(VM.name, settings(initialization({ hostName: 'third' })));
    assert.match(third.deferred ?? '', /QEMU refused an earlier drive in this run/);
    assert.deepEqual(hv.calls.slice(before).filter((c) => c.startsWith('updateDevice')), ['updateDevice config'], 'no live change is tried on a tray libvirt misreads');
    assert.equal(existsSync(second.payload.path), false);

    await hv.destroy(VM);
    assert.deepEqual(await service.endFinishedRuns(), [], 'the drive stays: it is the definition\'s');
    const settled = await store.readRecord(VM.uuid);
    assert.equal(settled?.current?.path, third.payload.path);
    assert.equal(settled?.current?.liveEmpty, undefined, 'the empty tray ended with the run');
  });

  it('Payload.detach in a run whose tray QEMU left empty tries no eject and deletes the image', async () => {
    await service.start(VM.name, settings(seedInitialization()));
    hv.failures.set('updateDevice', new AgentError('LIBVIRT_ERROR', "internal error: unable to execute QEMU command 'blockdev-insert-medium': Tray of the device is not open"));
    const attached = await service.attach(VM.name, settings(initialization({ hostName: 'renamed' })));
    const before = hv.calls.length;
    const result = await service.detach(VM.name);
    assert.equal(result.deferred, null);
    assert.ok(!hv.calls.slice(before).some((c) => c.includes('live')), hv.calls.slice(before).join(', '));
    assert.deepEqual(configDisks(), [INSTALL_CD]);
    assert.equal(existsSync(attached.payload.path), false);
  });

  it('Payload.detach refused for another reason changes nothing and says why', async () => {
    const started = await service.start(VM.name, settings(seedInitialization()));
    hv.failures.set('updateDevice', new AgentError('LIBVIRT_ERROR', 'injected eject failure'));
    await assert.rejects(service.detach(VM.name), /injected eject failure/);
    assert.equal(configDisks()[1]?.source, started.payload.path);
    assert.deepEqual((await store.readRecord(VM.uuid))?.current, started.payload);
    assert.equal((await store.readRecord(VM.uuid))?.pending, undefined);
  });

  it('names a missing domain with DOMAIN_NOT_FOUND and writes nothing', async () => {
    await assert.rejects(service.start('no-such-vm', settings(seedInitialization())), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_NOT_FOUND');
    assert.deepEqual(images(), []);
  });

  it('drops the drive of a domain undefined behind its back, with a notification, and keeps the others', async () => {
    const other = { uuid: '11111111-2222-3333-4444-555555555555', name: 'other' };
    hv.define(other, { machine: 'pc' });
    const gone = await service.attach(VM.name, settings(seedInitialization()));
    const kept = await service.attach('other', settings(initialization({ hostName: 'kept' })));
    hv.domains.delete(VM.uuid);
    assert.deepEqual(await service.sweepVanished(), [VM.uuid]);
    assert.equal(existsSync(gone.payload.path), false);
    assert.equal(existsSync(kept.payload.path), true);
    assert.equal(await store.readRecord(VM.uuid), undefined);
    assert.deepEqual(events.at(-1)?.[0], 'Payload.removed');
    assert.deepEqual(await service.sweepVanished(), []);
  });

  it('serializes concurrent requests for one domain: two attaches leave one device and one image', async () => {
    const [a, b] = await Promise.all([
      service.attach(VM.name, settings(initialization({ hostName: 'one' }))),
      service.attach(VM.name, settings(initialization({ hostName: 'two' }))),
    ]);
    assert.equal(a.payload.target, b.payload.target);
    assert.equal(configDisks().length, 2);
    assert.deepEqual(images(), [b.payload.path.split('/').pop()]);
  });
});

/**
 * Start-up reconciliation after crashes at each point of an attach, built by hand in the
 * state a crash at that point leaves behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { PayloadStore, type AttachedPayload } from '../../src/payload/store.js';
import { cdromDeviceXml } from '../../src/vm/domain-xml.js';
import { METADATA_KEY, METADATA_URI, recordXml } from '../../src/vm/record.js';
import { recover } from '../../src/vm/recover.js';
import { FakeDomains } from '../fakes/fake-domains.js';

const VM = { uuid: '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b', name: 'vm' };
const GONE = '00000000-1111-2222-3333-444444444444';
const SHA_OLD = '11'.repeat(32);
const SHA_NEW = '22'.repeat(32);

describe('vm recovery at start', () => {
  let dir = '';
  let hv: FakeDomains;
  let store: PayloadStore;
  let oldImage: AttachedPayload;
  let newImage: AttachedPayload;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-recover-'));
    hv = new FakeDomains();
    hv.define(VM, { machine: 'pc-q35-7.2' });
    store = new PayloadStore({ dir });
    await store.init();
    const common = { contentDigest: 'cd', instanceId: VM.uuid, label: 'config-2', size: 4, target: 'sda', bus: 'sata' as const, attachedAt: '2026-11-25T00:00:00.000Z' };
    oldImage = { ...common, path: await store.putImage(VM.uuid, new Uint8Array(4), SHA_OLD), sha256: SHA_OLD };
    newImage = { ...common, path: await store.putImage(VM.uuid, new Uint8Array(4), SHA_NEW), sha256: SHA_NEW };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const images = () => readdirSync(join(dir, 'images')).sort();
  const name = (p: AttachedPayload) => p.path.split('/').pop();
  const mark = async (payload: AttachedPayload) =>
    hv.setMetadata(VM, recordXml({ target: payload.target, bus: 'sata', path: payload.path, sha256: payload.sha256 }), METADATA_KEY, METADATA_URI, { config: true });

  it('finishes an attach that libvirt completed but the record did not commit', async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', newImage.path), { config: true });
    await mark(newImage);
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, pending: { op: 'attach', image: newImage, startedAt: 'x' } });
    const report = await recover(hv, store);
    assert.deepEqual(report.finished, [VM.uuid]);
    assert.equal((await store.readRecord(VM.uuid))?.current?.path, newImage.path);
    assert.deepEqual(images(), [name(newImage)], 'the unreferenced old image is swept');
  });

  it('rolls back an attach cut off after the device change but before the metadata', async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'attach', image: newImage, startedAt: 'x' } });
    // The crash came right after virDomainUpdateDeviceFlags put the new image in.
    await hv.updateDevice(VM, cdromDeviceXml('sda', 'sata', newImage.path), { config: true });
    const report = await recover(hv, store);
    assert.deepEqual(report.rolledBack, [VM.uuid]);
    assert.equal(hv.domain(VM.uuid).config.disks[0]?.source, oldImage.path);
    const record = await store.readRecord(VM.uuid);
    assert.equal(record?.current?.path, oldImage.path);
    assert.equal(record?.pending, undefined);
    assert.deepEqual(images(), [name(oldImage)]);
  });

  it("puts the running CD-ROM back to the recorded image when a crash inside libvirt's media change left the live definition showing an empty tray", async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await hv.start(VM, { paused: false });
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'attach', image: newImage, startedAt: 'x' } });
    // What the embedded driver's status file said after a SIGKILL in the middle of the
    // change (test/fault/sigkill-restart.test.ts): the tray empty, QEMU holding the new image.
    await hv.updateDevice(VM, cdromDeviceXml('sda', 'sata'), { live: true });
    const report = await recover(hv, store);
    assert.deepEqual(report.rolledBack, [VM.uuid]);
    assert.equal(hv.domain(VM.uuid).live?.disks[0]?.source, oldImage.path, 'the live CD-ROM has the recorded image again');
    assert.equal(hv.domain(VM.uuid).config.disks[0]?.source, oldImage.path);
    assert.equal((await store.readRecord(VM.uuid))?.current?.path, oldImage.path);
  });

  it('removes a device an interrupted first attach added without marking it', async () => {
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, pending: { op: 'attach', image: newImage, startedAt: 'x' } });
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', newImage.path), { config: true });
    await recover(hv, store);
    assert.deepEqual(hv.domain(VM.uuid).config.disks, []);
    assert.deepEqual(images(), []);
    assert.equal((await store.readRecord(VM.uuid))?.current, undefined);
  });

  it('completes a detach that was cut short', async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'detach', startedAt: 'x' } });
    await recover(hv, store);
    assert.deepEqual(hv.domain(VM.uuid).config.disks, []);
    assert.equal(hv.domain(VM.uuid).config.metadata.size, 0);
    const kept = await store.readRecord(VM.uuid);
    assert.equal(kept?.current, undefined);
    assert.equal(kept?.pending, undefined);
    assert.equal(kept?.lineage?.instanceId, oldImage.instanceId, 'the lineage outlives the drive');
    assert.deepEqual(images(), []);
  });

  it('finishes a detach cut short on a running domain whose eject QEMU refuses as Payload.detach does: out of the definition, in this run only', async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await hv.start(VM, { paused: false });
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'detach', startedAt: 'x' } });
    // What libvirtd answered at a restart after a SIGKILL during a detach (test/fault/sigkill-restart.test.ts).
    hv.failures.set('updateDevice', new AgentError('LIBVIRT_ERROR', "internal error: unable to execute QEMU command 'blockdev-remove-medium': Tray of device 'sata0-0-0' is not open"));
    const report = await recover(hv, store);
    assert.deepEqual([report.finished, report.failed], [[VM.uuid], []]);
    const record = await store.readRecord(VM.uuid);
    assert.equal(record?.pending, undefined);
    assert.equal(record?.current?.path, oldImage.path);
    assert.equal(record?.current?.runOnce, true, 'the drive is now this run only');
    assert.deepEqual(hv.domain(VM.uuid).config.disks, [], 'the definition no longer has it');
    assert.equal(hv.domain(VM.uuid).live?.disks[0]?.source, oldImage.path);
    assert.deepEqual(images(), [name(oldImage)], 'the image QEMU holds stays');
  });

  it('resumes a guest VM.start had committed but not yet resumed', async () => {
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await hv.start(VM, { paused: true });
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'resume', startedAt: 'x' } });
    const report = await recover(hv, store);
    assert.deepEqual(report.finished, [VM.uuid]);
    assert.equal(hv.domain(VM.uuid).state, 'running');
    assert.deepEqual((await store.readRecord(VM.uuid))?.current, oldImage);
    assert.equal((await store.readRecord(VM.uuid))?.pending, undefined);
  });

  it('undoes a VM.start cut off before its commit: the paused guest destroyed, the definition and record as they were', async () => {
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, pending: { op: 'attach', image: newImage, start: true, startedAt: 'x' } });
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', newImage.path), { config: true });
    await mark(newImage);
    await hv.start(VM, { paused: true });
    const report = await recover(hv, store);
    assert.deepEqual(report.rolledBack, [VM.uuid]);
    assert.equal(hv.domain(VM.uuid).state, 'shutoff', 'never left paused');
    assert.deepEqual(hv.domain(VM.uuid).config.disks, []);
    assert.equal(await store.readRecord(VM.uuid), undefined);
    assert.deepEqual(images(), []);
  });

  it('settles every other domain when libvirt cannot act on one, keeping that one\'s record and images for a later attempt', async () => {
    const WEDGED = { uuid: '0a0a0a0a-0b0b-4c0c-8d0d-0e0e0e0e0e0e', name: 'wedged' };
    hv.define(WEDGED, { machine: 'pc-q35-7.2' });
    const wedgedOld = { ...oldImage, path: await store.putImage(WEDGED.uuid, new Uint8Array(4), SHA_OLD) };
    const wedgedNew = { ...newImage, path: await store.putImage(WEDGED.uuid, new Uint8Array(4), SHA_NEW) };
    await store.writeRecord({ version: 1, uuid: WEDGED.uuid, name: WEDGED.name, current: wedgedOld, pending: { op: 'attach', image: wedgedNew, startedAt: 'x' } });
    await hv.attachDevice(VM, cdromDeviceXml('sda', 'sata', oldImage.path), { config: true });
    await mark(oldImage);
    await store.writeRecord({ version: 1, uuid: VM.uuid, name: VM.name, current: oldImage, pending: { op: 'detach', startedAt: 'x' } });
    // What libvirt answers while a job a crash left behind holds the domain (seen with SIGKILL during VM.start).
    hv.failures.set('state', new AgentError('LIBVIRT_ERROR', 'Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainCreateWithFlags)'));
    const report = await recover(hv, store);
    assert.deepEqual(report.failed.map((f) => [f.uuid, f.name]), [[WEDGED.uuid, 'wedged']]);
    assert.match(report.failed[0]!.error, /cannot acquire state change lock/);
    assert.deepEqual((await store.readRecord(WEDGED.uuid))?.pending?.image?.path, wedgedNew.path, 'its half-done change waits');
    assert.ok(images().includes(name(wedgedOld)!) && images().includes(name(wedgedNew)!), 'neither of its images is swept');
    assert.equal((await store.readRecord(VM.uuid))?.pending, undefined, 'the other domain is settled');
    assert.deepEqual(hv.domain(VM.uuid).config.disks, []);
  });

  it('drops the records and images of domains that no longer exist, and temp files', async () => {
    await store.writeRecord({ version: 1, uuid: GONE, name: 'gone', current: { ...oldImage, path: await store.putImage(GONE, new Uint8Array(1), SHA_OLD) } });
    writeFileSync(join(dir, 'images', '.configdrive-tmp-abc-x.iso'), 'partial');
    const report = await recover(hv, store);
    assert.deepEqual(report.vanished, [GONE]);
    assert.equal(report.tempFiles.length, 1);
    assert.deepEqual(images(), []);
    assert.deepEqual(await store.listRecords(), []);
  });
});

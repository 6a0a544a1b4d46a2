/**
 * VM.create on real libvirt 9.0 and QEMU (the embedded driver): oVirt engine's domain XML
 * with a PAYLOAD: CD-ROM becomes a defined domain whose CD-ROM holds the stored payload,
 * as the live XML and the image read back show, paused when launchPaused says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../agent/daemon/store-setup.js';
import { AgentError } from '../../src/errors.js';
import { readIsoFile } from '../../src/iso/index.js';
import { domainType } from '../../src/libvirt/embed.js';
import type { PayloadStore } from '../../src/payload/store.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import { METADATA_URI, parseRecord } from '../../src/vm/record.js';
import { VmService } from '../../src/vm/service.js';
import { parseVdsmCreate } from '../../src/vm/vdsm-xml.js';
import { openEmbedded, type TestLibvirt } from '../helpers/libvirt.js';

const FIXTURE = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/vdsm/create-q35-sata.xml'), 'utf8').replace('type="kvm"', `type="${domainType()}"`);

describe('VM.create on real libvirt and QEMU (qemu:///embed)', function () {
  this.timeout(180_000);
  let lv: TestLibvirt;
  let stateDir = '';
  let store: PayloadStore;
  let service: VmService;

  before(async () => {
    lv = await openEmbedded();
    stateDir = mkdtempSync(join(tmpdir(), 'vdsm-create-state-'));
    ({ store } = await openStore(lv.hv, { stateDir, isoGroup: '' }));
    service = new VmService({ hv: lv.hv, store, writer: 'builtin' });
  });
  after(async () => {
    await (lv as TestLibvirt | undefined)?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('creates the domain from the engine fixture: the live sdc holds the stored image, which reads back with the payload, and launchPaused leaves it paused', async () => {
    const request = parseVdsmCreate(FIXTURE);
    const r = await service.create(request);
    assert.equal(await lv.hv.state(r.domain), 'paused');
    const live = await lv.hv.getXml(r.domain, { inactive: false });
    const sdc = describeDomain(live).disks.find((d) => d.target === 'sdc');
    assert.deepEqual([sdc?.device, sdc?.bus, sdc?.source], ['cdrom', 'sata', r.payload.path]);
    // Fail closed: nothing in the definition lets libvirt drop the medium at a later start.
    const config = await lv.hv.getXml(r.domain, { inactive: true });
    assert.doesNotMatch(config, /PAYLOAD:|startupPolicy/);
    // The payload's files (user data with passwords) are on the drive only, not in the definition.
    for (const bytes of request.payload.tree.values()) assert.ok(!config.includes(Buffer.from(bytes).toString('base64')), 'a payload file is still in the definition');
    assert.doesNotMatch(config, /payload>/);
    assert.match(config, /launchPaused>true</, "the engine's other metadata stays");
    assert.equal(describeDomain(config).disks.find((d) => d.target === 'sdc')?.source, r.payload.path);
    assert.equal(parseRecord((await lv.hv.getMetadata(r.domain, METADATA_URI, { config: true }))!).path, r.payload.path);

    const image = await readIsoFile(r.payload.path);
    assert.equal(image.volumeId, 'config-2');
    assert.deepEqual([...image.files.keys()].sort(), [...request.payload.tree.keys()].sort());
    for (const [path, bytes] of request.payload.tree) assert.deepEqual(Buffer.from(image.files.get(path)!), Buffer.from(bytes), path);
    assert.equal((await store.readRecord(r.domain.uuid))?.current?.path, r.payload.path);
  });

  it('resumes a domain whose launchPaused is false', async () => {
    const xml = FIXTURE.replace('>true</ovirt-vm:launchPaused>', '>false</ovirt-vm:launchPaused>')
      .replace('dd493ddc-1ef2-4445-a248-4a7bc266a671', 'dd493ddc-1ef2-4445-a248-4a7bc266a673')
      .replace('<name>vdsm-payload-vm</name>', '<name>vdsm-payload-run</name>');
    const r = await service.create(parseVdsmCreate(xml));
    assert.equal(await lv.hv.state(r.domain), 'running');
  });

  it('leaves nothing when libvirt refuses the XML: no domain, no image, no record', async () => {
    const before = readdirSync(join(stateDir, 'images')).length;
    const xml = FIXTURE.replace('dd493ddc-1ef2-4445-a248-4a7bc266a671', 'dd493ddc-1ef2-4445-a248-4a7bc266a674')
      .replace('<name>vdsm-payload-vm</name>', '<name>vdsm-payload-bad</name>')
      .replace('machine="q35"', 'machine="no-such-machine"');
    await assert.rejects(service.create(parseVdsmCreate(xml)), (e: unknown) => e instanceof AgentError && e.code === 'LIBVIRT_ERROR');
    await assert.rejects(lv.hv.lookup('vdsm-payload-bad'), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_NOT_FOUND');
    assert.equal(readdirSync(join(stateDir, 'images')).length, before);
    assert.equal(await store.readRecord('dd493ddc-1ef2-4445-a248-4a7bc266a674'), undefined);
  });
});

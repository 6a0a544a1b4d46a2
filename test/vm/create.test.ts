/**
 * VM.create (VDSM's verb) against the libvirt stand-in: the request read from oVirt's
 * domain XML at the RPC edge, every refusal named at its field, and for a failure at
 * each libvirt step, nothing left behind: no domain, no image, no record. The real flow
 * runs against QEMU in test/integration/vdsm-create.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../src/errors.js';
import { readIsoFile } from '../../src/iso/index.js';
import { PayloadStore } from '../../src/payload/store.js';
import { parseAction } from '../../src/rpc/actions.js';
import { recover } from '../../src/vm/recover.js';
import { VmService } from '../../src/vm/service.js';
import { parseVdsmCreate, type VdsmCreate } from '../../src/vm/vdsm-xml.js';
import { FakeDomains, type Method } from '../fakes/fake-domains.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/vdsm');
const SATA = readFileSync(join(FIXTURES, 'create-q35-sata.xml'), 'utf8');
const IDE = readFileSync(join(FIXTURES, 'devicexml-payload-ide.xml'), 'utf8');
const UUID = 'dd493ddc-1ef2-4445-a248-4a7bc266a671';
const DEV = "domainXml: /domain/metadata/vm/device[@name='sdc']";
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The fixture with its first payload file element's attribute and content replaced. */
function withFirstFile(path: string, content: string): string {
  return SATA.replace(/<ovirt-vm:file path="openstack\/latest\/meta_data.json">[^<]*<\/ovirt-vm:file>/, `<ovirt-vm:file path="${path}">${content}</ovirt-vm:file>`);
}

function refusal(xml: string): AgentError {
  try {
    parseAction('VM.create', { domainXml: xml });
  } catch (err) {
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.code, 'INVALID_PARAMS');
    return err;
  }
  assert.fail('VM.create accepted the XML');
}
const paths = (err: AgentError) => err.problems.map((p) => p.path);

describe('VM.create request (oVirt domain XML with a PAYLOAD: CD-ROM)', () => {
  it('reads the engine shape: SATA sdc, source PAYLOAD:, volId, files, launchPaused', () => {
    const action = parseAction('VM.create', { domainXml: SATA });
    assert.equal(action.method, 'VM.create');
    const req = (action as { request: VdsmCreate }).request;
    assert.deepEqual([req.uuid, req.name, req.payload.target, req.payload.bus, req.payload.label, req.launchPaused], [UUID, 'vdsm-payload-vm', 'sdc', 'sata', 'config-2', true]);
    assert.deepEqual([...req.payload.tree.keys()], ['openstack/latest/meta_data.json', 'openstack/latest/user_data']);
    assert.match(Buffer.from(req.payload.tree.get('openstack/latest/user_data')!).toString(), /^#cloud-config\nhostname: vdsm-payload-vm/);
  });

  it("reads VDSM's own test shape: IDE hdd, a source with no file, the namespace on <metadata>, volId config-1", () => {
    const req = parseVdsmCreate(IDE);
    assert.deepEqual([req.payload.target, req.payload.bus, req.payload.label, req.launchPaused], ['hdd', 'ide', 'config-1', false]);
    assert.equal(req.payload.tree.size, 3);
  });

  it('names a path that climbs out, an absolute path and a NUL at the file element', () => {
    assert.deepEqual(paths(refusal(withFirstFile('../etc/shadow', b64('x')))).slice(0, 1), [`${DEV}/payload/file[0]/@path`]);
    assert.ok(paths(refusal(withFirstFile('/etc/shadow', b64('x')))).includes(`${DEV}/payload/file[0]/@path`));
    assert.ok(paths(refusal(withFirstFile('a&#0;b', b64('x')))).length > 0, 'a NUL is not even XML');
    assert.ok(paths(refusal(withFirstFile('a&#1;b', b64('x')))).length > 0);
  });

  it('names bad base64, a duplicate path, a missing path', () => {
    assert.ok(paths(refusal(withFirstFile('openstack/latest/meta_data.json', 'not base64!'))).includes(`${DEV}/payload/file[0]`));
    assert.ok(paths(refusal(withFirstFile('openstack/latest/user_data', b64('x')))).includes(`${DEV}/payload/file[1]/@path`));
    assert.ok(paths(refusal(SATA.replace('<ovirt-vm:file path="openstack/latest/user_data">', '<ovirt-vm:file>'))).includes(`${DEV}/payload/file[1]/@path`));
  });

  it('refuses a config-2 payload without meta_data.json and a uuid, as a pre-built drive is', () => {
    const err = refusal(withFirstFile('openstack/latest/vendor_data.json', b64('{}')));
    assert.deepEqual(paths(err), [`${DEV}/payload`]);
    assert.match(err.message, /meta_data\.json with a uuid/);
  });

  it('refuses a label of 33 characters (VDSM: 32) or not printable ASCII', () => {
    assert.deepEqual(paths(refusal(SATA.replace('<ovirt-vm:volId>config-2<', `<ovirt-vm:volId>${'x'.repeat(33)}<`))), [`${DEV}/payload/volId`]);
    assert.deepEqual(paths(refusal(SATA.replace('<ovirt-vm:volId>config-2<', '<ovirt-vm:volId>cönfig-2<'))).slice(0, 1), [`${DEV}/payload/volId`]);
  });

  it('fails closed: a PAYLOAD: CD-ROM without its payload, whatever startupPolicy says', () => {
    const err = refusal(SATA.replace('name="sdc"', 'name="sdd"'));
    assert.match(err.message, /payload devices sdc, sdd|needs an ovirt-vm:payload/);
    const bare = SATA.replace(/<ovirt-vm:device[\s\S]*<\/ovirt-vm:device>/, '');
    assert.deepEqual(paths(refusal(bare)), [DEV]);
  });

  it('refuses a domain with no payload device, and one with two', () => {
    assert.deepEqual(paths(refusal(SATA.replace(/<ovirt-vm:device[\s\S]*<\/ovirt-vm:device>/, '').replace('file="PAYLOAD:"', 'file="/isos/install.iso"'))), ['domainXml: /domain/devices']);
    const two = SATA.replace('</devices>', "<disk type='file' device='cdrom'><source file='PAYLOAD:'/><target dev='sdd' bus='sata'/></disk></devices>");
    assert.match(refusal(two).message, /payload devices sdc, sdd; VM\.create fills one/);
  });

  it('refuses payload metadata for a device that is no CD-ROM, or a CD-ROM with a real source', () => {
    assert.ok(paths(refusal(SATA.replace('device="cdrom"', 'device="floppy"').replace('file="PAYLOAD:"', 'file="/x.img"'))).includes(DEV));
    assert.match(refusal(SATA.replace('file="PAYLOAD:"', 'file="/isos/other.iso"')).message, /source must be PAYLOAD: or none/);
  });

  it('refuses DOCTYPE and entities, a launchPaused that is no boolean, a missing UUID, an oversized XML', () => {
    const doctype = `<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/shadow">]>${SATA.replace(/^<\?xml[^>]*>/, '')}`;
    assert.match(refusal(doctype).message, /DOCTYPE or entity/);
    assert.deepEqual(paths(refusal(SATA.replace('>true</ovirt-vm:launchPaused>', '>yes</ovirt-vm:launchPaused>'))), ['domainXml: /domain/metadata/vm/launchPaused']);
    assert.deepEqual(paths(refusal(SATA.replace(/<uuid>[^<]*<\/uuid>/, ''))), ['domainXml: /domain/uuid']);
    assert.deepEqual(paths(refusal('<domain><name>x</name>')), ['domainXml: /']);
    assert.deepEqual(paths(refusal('x'.repeat(4 * 1024 * 1024 + 1))), ['params.domainXml']);
  });
});

describe('VM.create flow (libvirt stand-in)', () => {
  let dir = '';
  let hv: FakeDomains;
  let store: PayloadStore;
  let service: VmService;
  let warnings: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vm-create-'));
    hv = new FakeDomains();
    store = new PayloadStore({ dir });
    await store.init();
    warnings = [];
    service = new VmService({ hv, store, writer: 'builtin', warn: (m) => warnings.push(m) });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const images = () => readdirSync(join(dir, 'images'));
  const nothingLeft = async () => {
    assert.equal(hv.domains.size, 0, 'no domain defined');
    assert.deepEqual(images(), [], 'no image');
    assert.deepEqual(await store.listRecords(), [], 'no record');
  };

  it('defines the domain with the stored image in sdc and our record, starts it paused and leaves it so (launchPaused)', async () => {
    const r = await service.create(parseVdsmCreate(SATA));
    assert.equal(r.paused, true);
    const d = hv.domain(UUID);
    assert.equal(d.state, 'paused');
    const sdc = d.config.disks.find((x) => x.target === 'sdc');
    assert.deepEqual([sdc?.device, sdc?.bus, sdc?.source], ['cdrom', 'sata', r.payload.path]);
    assert.equal(d.live?.disks.find((x) => x.target === 'sdc')?.source, r.payload.path);
    const image = await readIsoFile(r.payload.path);
    assert.equal(image.volumeId, 'config-2');
    assert.deepEqual([...image.files.keys()].sort(), ['openstack/latest/meta_data.json', 'openstack/latest/user_data']);
    const record = await store.readRecord(UUID);
    assert.equal(record?.current?.path, r.payload.path);
    assert.equal(record?.pending, undefined);
    assert.ok(hv.calls.indexOf('start paused') > hv.calls.indexOf('setMetadata config'), 'the record is in the definition before the start');
    assert.ok(!hv.calls.includes('resume'));
  });

  it('resumes when launchPaused is false, and the journal entry for the resume is gone', async () => {
    const r = await service.create(parseVdsmCreate(SATA.replace('>true</ovirt-vm:launchPaused>', '>false</ovirt-vm:launchPaused>')));
    assert.equal(r.paused, false);
    assert.equal(hv.domain(UUID).state, 'running');
    assert.equal((await store.readRecord(UUID))?.pending, undefined);
  });

  it('takes the label from volId (config-1 in VDSM\'s own test)', async () => {
    const r = await service.create(parseVdsmCreate(IDE));
    assert.equal((await readIsoFile(r.payload.path)).volumeId, 'config-1');
    assert.equal(r.payload.target, 'hdd');
  });

  it('refuses a domain that already exists, by UUID or name, and changes nothing', async () => {
    hv.define({ uuid: UUID, name: 'other' });
    await assert.rejects(service.create(parseVdsmCreate(SATA)), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE');
    hv.domains.clear();
    hv.define({ uuid: '11111111-2222-4333-8444-555555555555', name: 'vdsm-payload-vm' });
    await assert.rejects(service.create(parseVdsmCreate(SATA)), /already exists/);
    assert.equal(hv.domains.size, 1);
    assert.deepEqual(images(), []);
  });

  const steps: Method[] = ['defineXml', 'getXml', 'updateDevice', 'setMetadata', 'attachDevice', 'start', 'resume'];
  for (const step of steps) {
    it(`leaves nothing when ${step} fails: no domain, no image, no record`, async () => {
      hv.failures.set(step, new AgentError('LIBVIRT_ERROR', `injected ${step} failure`, { details: { libvirtCode: 1 } }));
      const xml = step === 'resume' ? SATA.replace('>true</ovirt-vm:launchPaused>', '>false</ovirt-vm:launchPaused>') : SATA;
      await assert.rejects(service.create(parseVdsmCreate(xml)), new RegExp(`injected ${step} failure`));
      await nothingLeft();
      assert.deepEqual(warnings, []);
    });
  }

  it('leaves nothing when the live XML does not show the image (a start that dropped an optional medium)', async () => {
    const start = hv.start.bind(hv);
    hv.start = async (ref, options) => {
      await start(ref, options);
      hv.domain(ref.uuid).live!.disks = hv.domain(ref.uuid).live!.disks.filter((d) => d.target !== 'sdc');
    };
    await assert.rejects(service.create(parseVdsmCreate(SATA)), (e: unknown) => e instanceof AgentError && e.code === 'ISO_VERIFY_FAILED');
    await nothingLeft();
  });

  it('recovery undoes a VM.create a crash cut off after the define: destroyed, undefined, image and record gone', async () => {
    // The crash: the flow stops dead at the start (nothing of the rollback runs).
    hv.start = async () => {
      throw new Error('crash');
    };
    const cleanup = (service as unknown as { cleanup: unknown }).cleanup;
    (service as unknown as { cleanup: (w: string, s: () => Promise<void>) => Promise<void> }).cleanup = async () => undefined;
    await assert.rejects(service.create(parseVdsmCreate(SATA)), /crash/);
    (service as unknown as { cleanup: unknown }).cleanup = cleanup;
    assert.equal(hv.domains.size, 1);
    assert.equal((await store.readRecord(UUID))?.pending?.create, true);
    const report = await recover(hv, store);
    assert.deepEqual(report.rolledBack, [UUID]);
    await nothingLeft();
  });
});

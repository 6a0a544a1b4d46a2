import assert from 'node:assert/strict';
import { AgentError } from '../../src/errors.js';
import { cdromBus, cdromDeviceXml, describeDomain, freeTarget, parseXmlDocument } from '../../src/vm/domain-xml.js';
import { parseRecord, recordXml, METADATA_URI } from '../../src/vm/record.js';

/** Shaped like `virsh dumpxml --inactive` of a q35 guest with an install CD (seed test case 2). */
const Q35_WITH_INSTALL_CD = `<domain type='qemu'>
  <name>seed-vm</name>
  <uuid>6F1C7E2A-3B4D-4E5F-8A9B-0C1D2E3F4A5B</uuid>
  <metadata>
    <other:thing xmlns:other="https://example.com/other"/>
  </metadata>
  <memory unit='KiB'>131072</memory>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/images/root.qcow2'/><target dev='vda' bus='virtio'/><boot order='2'/></disk>
    <disk type='file' device='cdrom'><source file='/isos/debian.iso'/><target dev='sda' bus='sata'/><readonly/><boot order='1'/></disk>
    <controller type='sata' index='0'/>
    <interface type='user'><mac address='52:54:00:AA:00:01'/><model type='virtio'/></interface>
    <interface type='user'><mac address='52:54:00:aa:00:02'/></interface>
  </devices>
</domain>`;

const PC_EMPTY = `<domain type='qemu'><name>pc</name><uuid>11111111-2222-3333-4444-555555555555</uuid>
  <os><type machine='pc-i440fx-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><target dev='hda' bus='ide'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
    <controller type='scsi' model='lsilogic'/>
  </devices></domain>`;

describe('vm domain XML', () => {
  it('reads uuid, name, machine, NIC MACs in order and every disk with its source', () => {
    const d = describeDomain(Q35_WITH_INSTALL_CD);
    assert.equal(d.uuid, '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b');
    assert.equal(d.name, 'seed-vm');
    assert.equal(d.machine, 'pc-q35-7.2');
    assert.deepEqual(d.macs, ['52:54:00:aa:00:01', '52:54:00:aa:00:02']);
    assert.deepEqual(d.disks, [
      { device: 'disk', bus: 'virtio', target: 'vda', source: '/var/lib/images/root.qcow2', bootOrder: 2 },
      { device: 'cdrom', bus: 'sata', target: 'sda', source: '/isos/debian.iso', bootOrder: 1 },
    ]);
  });

  it('picks SATA on q35, IDE on i440fx, SCSI only with a virtio-scsi controller', () => {
    assert.equal(cdromBus(describeDomain(Q35_WITH_INSTALL_CD)), 'sata');
    assert.equal(cdromBus(describeDomain(PC_EMPTY)), 'ide', 'an lsilogic controller is not virtio-scsi');
    const withVirtioScsi = PC_EMPTY.replace("model='lsilogic'", "model='virtio-scsi'");
    assert.equal(cdromBus(describeDomain(withVirtioScsi)), 'scsi');
  });

  it('picks the first target no disk uses, and fails clearly when IDE is full', () => {
    assert.equal(freeTarget(describeDomain(Q35_WITH_INSTALL_CD), 'sata'), 'sdb');
    assert.equal(freeTarget(describeDomain(PC_EMPTY), 'ide'), 'hdb');
    const full = PC_EMPTY.replace('</devices>', "<disk device='disk'><target dev='hdb' bus='ide'/></disk><disk device='disk'><target dev='hdd' bus='ide'/></disk></devices>");
    assert.throws(() => freeTarget(describeDomain(full), 'ide'), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE' && /hda\.\.hdd/.test(e.message));
  });

  it('writes a read-only raw CD-ROM without boot order or DAC relabelling, escaping the path', () => {
    const xml = cdromDeviceXml('sdb', 'sata', `/var/lib/configdrived/a"b&c.iso`);
    assert.match(xml, /<source file="\/var\/lib\/configdrived\/a&quot;b&amp;c\.iso"><seclabel model='dac' relabel='no'\/><\/source>/);
    assert.match(xml, /<readonly\/>/);
    assert.doesNotMatch(xml, /<boot/);
    const parsed = describeDomain(`<domain><name>x</name><uuid>u</uuid><devices>${xml}</devices></domain>`);
    assert.deepEqual(parsed.disks, [{ device: 'cdrom', bus: 'sata', target: 'sdb', source: `/var/lib/configdrived/a"b&c.iso` }]);
    assert.doesNotMatch(cdromDeviceXml('hdc', 'ide'), /<source/);
  });

  it('refuses XML with a DOCTYPE or entities, and malformed XML, without expanding anything', () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><domain>&b;</domain>';
    assert.throws(() => parseXmlDocument(bomb, 'domain XML'), /DOCTYPE/);
    assert.throws(() => describeDomain('<domain><name>x</name>'), /not well-formed/);
    assert.throws(() => describeDomain('<other/>'), /no <domain>/);
  });
});

describe('vm drive record', () => {
  it('round-trips through the XML libvirt stores, with no field that could hold a secret', () => {
    const record = { target: 'sdb', bus: 'sata', path: '/var/lib/configdrived/x.iso', sha256: 'ab'.repeat(32), instanceId: 'iid-1', attachedAt: '2026-11-25T10:00:00.000Z' } as const;
    const xml = recordXml(record);
    // What virDomainGetMetadata gives back: the element with our namespace declared.
    const stored = xml.replace('<drive ', `<drive xmlns="${METADATA_URI}" `);
    assert.deepEqual(parseRecord(stored), record);
  });

  it('reports a damaged record instead of guessing which CD-ROM is ours', () => {
    assert.throws(() => parseRecord('<drive target="../x" bus="sata"/>'), (e: unknown) => e instanceof AgentError && e.code === 'DOMAIN_STATE');
    assert.throws(() => parseRecord('<drive target="sdb" bus="usb"/>'), /damaged/);
  });
});

/**
 * The agent's CD-ROM in a domain: find it, put an image in it (adding the device when
 * there is none), and undo exactly that. Only the device the agent's metadata record
 * names is ever changed; any other CD-ROM (an install CD) is left alone.
 */
import { AgentError } from '../errors.js';
import { cdromBus, cdromDeviceXml, describeDomain, findDisk, freeTarget, type CdromBus, type DomainDescription } from './domain-xml.js';
import type { AffectFlags, DomainControl, DomainRef } from './ports.js';
import { METADATA_KEY, METADATA_URI, parseRecord, recordXml, type DriveRecord } from './record.js';

export interface OurDrive {
  readonly record?: DriveRecord;
  /** The device the record names, when the domain (still) has it. */
  readonly present: boolean;
  readonly desc: DomainDescription;
}

/** The domain as libvirt has it for `flags` (live or config), and our record in it. */
export async function readOurDrive(hv: DomainControl, dom: DomainRef, live: boolean): Promise<OurDrive> {
  const flags: AffectFlags = live ? { live: true } : { config: true };
  const domainXml = await hv.getXml(dom, { inactive: !live });
  const desc = describeDomain(domainXml);
  // Asking libvirt for metadata that is not there makes it log an error; the domain XML
  // already says whether our namespace is present.
  const xml = domainXml.includes(METADATA_URI) ? await hv.getMetadata(dom, METADATA_URI, flags) : null;
  if (xml === null) return { desc, present: false };
  const record = parseRecord(xml);
  const disk = findDisk(desc, record.target);
  if (disk !== undefined && disk.device !== 'cdrom') {
    throw new AgentError('DOMAIN_STATE', `domain ${dom.name}: the agent's record names ${record.target}, which is now a ${disk.device}, not a CD-ROM; remove the record with virsh metadata --remove`);
  }
  return { desc, record, present: disk !== undefined };
}

/** What insertMedia did, so that undoMedia can reverse exactly that. */
export interface MediaChange {
  readonly target: string;
  readonly bus: CdromBus;
  readonly added: boolean;
  readonly previousSource?: string;
  readonly previousRecord?: DriveRecord;
  readonly flags: AffectFlags;
}

/**
 * Puts `path` into the agent's CD-ROM for `flags` and records it in the metadata. A shut
 * off domain gets the device in its definition (any bus); a running one can only change
 * media in a device it has, or hot-plug on SCSI.
 */
export async function insertMedia(
  hv: DomainControl,
  dom: DomainRef,
  ours: OurDrive,
  record: Omit<DriveRecord, 'target' | 'bus'>,
  flags: AffectFlags,
): Promise<MediaChange> {
  const previous = ours.record;
  if (previous !== undefined && ours.present) {
    const disk = findDisk(ours.desc, previous.target);
    await updateDevice(hv, dom, cdromDeviceXml(previous.target, previous.bus, record.path), flags);
    const change: MediaChange = {
      target: previous.target,
      bus: previous.bus,
      added: false,
      previousRecord: previous,
      flags,
      ...(disk?.source === undefined ? {} : { previousSource: disk.source }),
    };
    await markOrUndo(hv, dom, change, recordXml({ ...record, target: previous.target, bus: previous.bus }));
    return change;
  }
  const bus = cdromBus(ours.desc);
  if (flags.live === true && bus !== 'scsi') {
    throw new AgentError(
      'DOMAIN_STATE',
      `domain ${dom.name} is running without the agent's CD-ROM, and a ${bus.toUpperCase()} CD-ROM cannot be hot-plugged; ` +
        'attach while the domain is shut off (or use VM.start), or give it a virtio-scsi controller',
    );
  }
  const target = freeTarget(ours.desc, bus);
  await hv.attachDevice(dom, cdromDeviceXml(target, bus, record.path), flags);
  const change: MediaChange = { target, bus, added: true, flags, ...(previous === undefined ? {} : { previousRecord: previous }) };
  await markOrUndo(hv, dom, change, recordXml({ ...record, target, bus }));
  return change;
}

/**
 * A device update, and when QEMU refuses a live one (a tray the firmware closed), the
 * status file put right. libvirt 9.0 writes the new media into the status file before
 * asking QEMU and, on the refusal, puts back only its in-memory definition: it reloads
 * the stale file when it starts again (a daemon restart, with the embedded driver) and
 * then says the tray is empty while QEMU holds the image, and the next detach deletes
 * an image QEMU has open (test/fault/refused-media-change.test.ts). Any live change
 * makes libvirt save the status from memory; our own metadata, set again as it is,
 * changes nothing else.
 */
export async function updateDevice(hv: DomainControl, dom: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
  try {
    await hv.updateDevice(dom, xml, flags);
  } catch (err) {
    if (flags.live === true) {
      // The refusal is what the caller must hear; a failure to re-save is not.
      await hv
        .getMetadata(dom, METADATA_URI, { live: true })
        .then((current) => hv.setMetadata(dom, current, METADATA_KEY, METADATA_URI, { live: true }))
        .catch(() => undefined);
    }
    throw err;
  }
}

/** QEMU's refusal to eject a tray it holds closed while libvirt believes it open (docs/libvirt.md). */
export function trayRefused(err: unknown): boolean {
  return err instanceof AgentError && err.code === 'LIBVIRT_ERROR' && /Tray of device .* is not open/.test(err.message);
}

/**
 * QEMU took the old medium out and then refused the new one (the guest closed the tray in
 * between): the running guest's CD-ROM is empty. libvirt 9.0 deletes the old medium's
 * block nodes and puts the old source back in its live definition, and from then on
 * believes the tray open while QEMU has it closed, so every later live change of that
 * device fails in this run (measured: docs/libvirt.md).
 */
export function insertRefused(err: unknown): boolean {
  return err instanceof AgentError && err.code === 'LIBVIRT_ERROR' && /'blockdev-insert-medium': Tray of the device is not open/.test(err.message);
}

/** Writes our record; if libvirt refuses, the device change just made is reversed first. */
async function markOrUndo(hv: DomainControl, dom: DomainRef, change: MediaChange, xml: string): Promise<void> {
  try {
    await hv.setMetadata(dom, xml, METADATA_KEY, METADATA_URI, change.flags);
  } catch (err) {
    await undoDevice(hv, dom, change).catch(() => undefined);
    throw err;
  }
}

function undoDevice(hv: DomainControl, dom: DomainRef, change: MediaChange): Promise<void> {
  return change.added
    ? hv.detachDevice(dom, cdromDeviceXml(change.target, change.bus), change.flags)
    : updateDevice(hv, dom, cdromDeviceXml(change.target, change.bus, change.previousSource), change.flags);
}

/** Reverses insertMedia; every step is attempted, the first failure is reported. */
export async function undoMedia(hv: DomainControl, dom: DomainRef, change: MediaChange): Promise<void> {
  const failures: unknown[] = [];
  const attempt = async (step: () => Promise<void>) => {
    try {
      await step();
    } catch (err) {
      failures.push(err);
    }
  };
  await attempt(() => undoDevice(hv, dom, change));
  const previous = change.previousRecord;
  await attempt(() => hv.setMetadata(dom, previous === undefined ? null : recordXml(previous), METADATA_KEY, METADATA_URI, change.flags));
  if (failures.length > 0) throw failures[0];
}

/** The source libvirt shows for our device now: the check before the guest may run. */
export async function assertSource(hv: DomainControl, dom: DomainRef, target: string, path: string, live: boolean): Promise<void> {
  const desc = describeDomain(await hv.getXml(dom, { inactive: !live }));
  const disk = findDisk(desc, target);
  if (disk?.device !== 'cdrom' || disk.source !== path) {
    throw new AgentError(
      'ISO_VERIFY_FAILED',
      `domain ${dom.name}: ${live ? 'live' : 'persistent'} XML shows ${disk === undefined ? 'no device' : `source "${String(disk.source)}"`} at ${target}, expected ${path}`,
    );
  }
}

/** Removes our CD-ROM (config) or empties it (live), and our record. */
export async function removeMedia(hv: DomainControl, dom: DomainRef, ours: OurDrive, flags: AffectFlags): Promise<void> {
  const record = ours.record;
  if (record === undefined) return;
  if (ours.present) {
    const device = cdromDeviceXml(record.target, record.bus);
    // A running IDE/SATA device cannot be unplugged: its tray is emptied instead.
    if (flags.live === true && record.bus !== 'scsi') await updateDevice(hv, dom, device, flags);
    else await hv.detachDevice(dom, device, flags);
  }
  await hv.setMetadata(dom, null, METADATA_KEY, METADATA_URI, flags);
}

/**
 * Start-up reconciliation: the store's records, its files and libvirt brought back into
 * agreement after a crash or while the agent was down.
 *
 *  - temp files of interrupted writes: removed;
 *  - a record whose domain no longer exists: its images and the record removed;
 *  - a pending attach: finished when the domain's metadata already names the new image
 *    (libvirt got the change), otherwise rolled back (new image removed);
 *  - a pending VM.start (an attach with `start`): rolled back, the guest it started paused
 *    destroyed first; its caller never heard of success, and the guest never ran;
 *  - a pending VM.create (an attach with `create`): the domain it defined destroyed and
 *    undefined, its image and record removed;
 *  - a pending resume (VM.start committed, the guest still paused): resumed;
 *  - a pending detach: finished (the device may already be gone; what is left of ours
 *    is removed), as a Payload.detach whose eject QEMU refuses when it keeps the drive;
 *  - images no record references: removed;
 *  - a migration begun here or prepared for here: resolved from libvirt as
 *    migration-state.ts says, or left for later while it may still be under way;
 *  - a domain libvirt cannot act on now: left as it is, retried before its next change
 *    and by the daemon's periodic sweep (VmService.settlePending).
 *
 * libvirt is the truth about devices; the record is the truth about which files are ours.
 */
import { CONFIG_TABLE } from '../config/config.js';
import { committedRecord, detachedRecord, recordFor, type AttachedPayload, type DomainRecord, type PayloadStore } from '../payload/store.js';
import { cdromDeviceXml, describeDomain, findDisk, type CdromBus } from './domain-xml.js';
import { lookupOrNull } from './lookup.js';
import { readOurDrive, removeMedia, trayRefused, updateDevice } from './media.js';
import { settleEmigration, settleImmigration } from './migration-state.js';
import type { DomainControl, DomainRef } from './ports.js';
import { METADATA_KEY, METADATA_URI, recordXml, type DriveRecord } from './record.js';

export interface RecoveryReport {
  readonly tempFiles: readonly string[];
  readonly finished: readonly string[];
  readonly rolledBack: readonly string[];
  readonly vanished: readonly string[];
  readonly orphanImages: readonly string[];
  /** Domains whose half-done change could not be resolved now; their record and images stay. */
  readonly failed: readonly { readonly uuid: string; readonly name: string; readonly error: string }[];
}

export type Settlement = 'none' | 'finished' | 'rolled-back' | 'vanished';

/** How long a migration begun or prepared may show no sign of libvirt's before it is given up. */
export interface SettleOptions {
  readonly migrationTimeoutMs: number;
  readonly now?: () => Date;
}

export const DEFAULT_SETTLE: SettleOptions = { migrationTimeoutMs: CONFIG_TABLE.migrationTimeoutMs.default };

/**
 * Brings one record into agreement with libvirt: a vanished domain's record goes, a
 * pending change is finished or rolled back. The caller holds the domain's lock (or
 * runs before anything else can).
 */
export async function settle(hv: DomainControl, store: PayloadStore, record: DomainRecord, options: SettleOptions = DEFAULT_SETTLE): Promise<Settlement> {
  const op = record.pending?.op;
  if (op === 'emigrate' || op === 'immigrate') {
    const clock = { over: false, nowMs: (options.now?.() ?? new Date()).getTime(), timeoutMs: options.migrationTimeoutMs };
    if (op === 'emigrate') return (await settleEmigration(hv, store, record, clock)) === 'left' ? 'vanished' : 'rolled-back';
    const arrival = await settleImmigration(hv, store, record, clock);
    // Nobody finished the migration (its caller died after libvirt's success): the guest
    // runs on; the watcher's next sync reads its channel, where a report waits unread.
    if (arrival.toResume !== undefined) await hv.resume(arrival.toResume);
    return arrival.outcome === 'arrived' ? 'finished' : 'rolled-back';
  }
  const dom = await lookupOrNull(hv, record.uuid);
  const outcome = dom === null ? 'vanished' : await resolvePending(hv, store, dom, record);
  if (dom === null) await store.removeRecord(record.uuid);
  // The images the settled record no longer names go with it: nothing refers to them.
  const kept = (await store.readRecord(record.uuid))?.current?.path;
  for (const path of [record.current?.path, record.pending?.image?.path]) {
    if (path !== undefined && path !== kept) await store.removeImage(path);
  }
  return outcome;
}

/**
 * At start, before requests: every record settled, each on its own, so that one domain
 * libvirt cannot act on (a job left behind by a crash holds its state lock) keeps its
 * record and images for a later attempt instead of keeping the daemon down. Then images
 * no record references are removed.
 */
export async function recover(hv: DomainControl, store: PayloadStore, options: SettleOptions = DEFAULT_SETTLE): Promise<RecoveryReport> {
  const report = { tempFiles: await store.removeTempFiles(), finished: [] as string[], rolledBack: [] as string[], vanished: [] as string[], orphanImages: [] as string[], failed: [] as { uuid: string; name: string; error: string }[] };
  const keep = new Set<string>();

  for (const record of await store.listRecords()) {
    try {
      const outcome = await settle(hv, store, record, options);
      if (outcome === 'finished') report.finished.push(record.uuid);
      if (outcome === 'rolled-back') report.rolledBack.push(record.uuid);
      if (outcome === 'vanished') report.vanished.push(record.uuid);
    } catch (err) {
      report.failed.push({ uuid: record.uuid, name: record.name, error: err instanceof Error ? err.message : String(err) });
      if (record.pending?.image !== undefined) keep.add(record.pending.image.path);
    }
    const settled = await store.readRecord(record.uuid);
    if (settled?.current !== undefined) keep.add(settled.current.path);
  }

  for (const path of await store.listImages()) {
    if (keep.has(path)) continue;
    if (await store.removeImageUnlessHeld(path)) report.orphanImages.push(path);
  }
  return report;
}

function recordOf(payload: AttachedPayload): DriveRecord {
  return {
    target: payload.target,
    bus: payload.bus as CdromBus,
    path: payload.path,
    sha256: payload.sha256,
    contentDigest: payload.contentDigest,
    instanceId: payload.instanceId,
    ...(payload.generation === undefined ? {} : { generation: String(payload.generation) }),
    attachedAt: payload.attachedAt,
  };
}

/**
 * Puts back what was there before an attach that did not commit: any CD-ROM that shows
 * the new image is returned to the old image (our device) or removed (a device the
 * attach added), and the metadata names the old image again, or nothing.
 */
async function undoAttach(hv: DomainControl, dom: DomainRef, newPath: string, current: AttachedPayload | undefined, live: boolean): Promise<void> {
  const flags = live ? { live: true } : { config: true };
  const desc = describeDomain(await hv.getXml(dom, { inactive: !live }));
  for (const disk of desc.disks) {
    if (disk.device !== 'cdrom' || disk.source !== newPath) continue;
    const bus = disk.bus as CdromBus;
    if (current !== undefined && current.target === disk.target) await updateDevice(hv, dom, cdromDeviceXml(disk.target, bus, current.path), flags);
    else if (live && bus !== 'scsi') await updateDevice(hv, dom, cdromDeviceXml(disk.target, bus), flags);
    else await hv.detachDevice(dom, cdromDeviceXml(disk.target, bus), flags);
  }
  await hv.setMetadata(dom, current === undefined ? null : recordXml(recordOf(current)), METADATA_KEY, METADATA_URI, flags);
}

/** After a detach: the record keeps the domain's instance lineage, nothing else. */
export async function keepLineage(store: PayloadStore, record: DomainRecord, dom: DomainRef, seenRunning: boolean): Promise<void> {
  const kept = detachedRecord(record, dom, seenRunning);
  if (kept === undefined) await store.removeRecord(record.uuid);
  else await store.writeRecord(kept);
}

/**
 * Puts `payload` into our running CD-ROM unless the live definition already shows it.
 * With the embedded driver a crash can cut libvirt off inside a media change: its status
 * file then says what it was about to do or had done (an empty tray, say) while QEMU has
 * another medium in. A media change to the image we mean makes both say it again.
 */
async function forceLive(hv: DomainControl, dom: DomainRef, payload: AttachedPayload): Promise<void> {
  const disk = findDisk(describeDomain(await hv.getXml(dom, { inactive: false })), payload.target);
  if (disk === undefined || disk.device !== 'cdrom' || disk.source === payload.path) return;
  await updateDevice(hv, dom, cdromDeviceXml(payload.target, payload.bus as CdromBus, payload.path), { live: true });
  await hv.setMetadata(dom, recordXml(recordOf(payload)), METADATA_KEY, METADATA_URI, { live: true });
}

async function resolvePending(hv: DomainControl, store: PayloadStore, dom: DomainRef, record: DomainRecord): Promise<'none' | 'finished' | 'rolled-back'> {
  const pending = record.pending;
  if (pending === undefined) return 'none';
  let state = await hv.state(dom);
  if (pending.op === 'resume') {
    // VM.start had committed its drive and was about to resume the paused guest.
    if (state === 'paused') await hv.resume(dom);
    await store.writeRecord(recordFor(record, dom));
    return 'finished';
  }
  if (pending.op === 'attach' && pending.create === true) {
    // A VM.create cut off before its commit: its caller was told nothing, so the domain it
    // defined goes as if never asked for (the image goes in settle, the record here).
    if (state !== 'shutoff') await hv.destroy(dom);
    await hv.undefine(dom);
    await store.removeRecord(record.uuid);
    return 'rolled-back';
  }
  if (pending.op === 'attach' && pending.start === true && state === 'paused') {
    // A VM.start cut off before its commit: its caller was told nothing, and the guest
    // never ran; it is undone (shut off, as it was) rather than left paused for good.
    await hv.destroy(dom);
    state = await hv.state(dom);
  }
  const running = state !== 'shutoff';
  const ours = await readOurDrive(hv, dom, false);
  if (pending.op === 'attach' && pending.image !== undefined) {
    const target = ours.record?.target;
    const disk = target === undefined ? undefined : findDisk(ours.desc, target);
    if (pending.start !== true && ours.record?.path === pending.image.path && disk?.source === pending.image.path) {
      // libvirt has the new image and our mark on it: the crash came just before the commit.
      const current: AttachedPayload = { ...pending.image, target: ours.record.target, bus: ours.record.bus };
      if (running) await forceLive(hv, dom, current);
      await store.writeRecord(committedRecord(record, { uuid: record.uuid, name: dom.name }, current, running));
      return 'finished';
    }
    if (running) {
      await undoAttach(hv, dom, pending.image.path, record.current, true);
      if (record.current !== undefined) await forceLive(hv, dom, record.current);
    }
    await undoAttach(hv, dom, pending.image.path, record.current, false);
    const settled = recordFor(record, dom);
    // A first attach undone leaves nothing to record.
    if (settled.current === undefined && settled.lineage === undefined) await store.removeRecord(record.uuid);
    else await store.writeRecord(settled);
    return 'rolled-back';
  }
  // A detach that was cut short is completed: the caller asked for the drive to go.
  if (running) {
    try {
      await removeMedia(hv, dom, await readOurDrive(hv, dom, true), { live: true });
    } catch (err) {
      // QEMU refused the eject (a tray the firmware closed) and kept the drive: finished
      // as a refused Payload.detach is, out of the definition and in this run only.
      const current = record.current;
      const live = current === undefined ? undefined : findDisk(describeDomain(await hv.getXml(dom, { inactive: false })), current.target);
      if (current === undefined || live?.source !== current.path || !trayRefused(err)) throw err;
      await removeMedia(hv, dom, ours, { config: true });
      await store.writeRecord({ ...recordFor(record, dom), current: { ...current, runOnce: true } });
      return 'finished';
    }
  }
  await removeMedia(hv, dom, ours, { config: true });
  await keepLineage(store, record, dom, running);
  return 'finished';
}

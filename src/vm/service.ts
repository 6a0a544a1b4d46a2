/**
 * The flows between an action and a domain, each serialized per domain and each ending
 * with a verification of what the guest will see:
 *
 *  - start:  shut-off domain -> image built and stored -> our CD-ROM in the persistent
 *            definition (so every later boot has it too) -> started paused -> live XML
 *            and the image on disk verified -> resumed. Any failure: destroyed, the
 *            definition and record restored, the new image removed. Run Once
 *            (`persistent: false`): the CD-ROM leaves the definition again before the
 *            guest runs, so only this run has it.
 *  - attach: shut off: the definition changes; running: media change in our CD-ROM.
 *  - detach: our CD-ROM emptied/removed and its image deleted; the record keeps only
 *            the domain's instance lineage.
 *
 * Every drive is an instance the lineage names (src/payload/instance-lineage.ts).
 *
 * Every change is journaled in the store's record first (see src/payload/store.ts), so
 * recover.ts can finish or undo it after a crash.
 */
import { randomUUID } from 'node:crypto';
import { AgentError } from '../errors.js';
import type { DomainFacts } from '../cloudinit/types.js';
import { readIsoFile, type WriterName } from '../iso/index.js';
import { DEFAULT_LABEL, foreignImage, verifyImage, type DriveImage, type LineageOptions } from '../payload/build-drive.js';
import { savedBuild, type BuildJob, type SavedBuild } from '../payload/build-job.js';
import type { BuildSource } from '../payload/drive-source.js';
import { inlineBuilder, type DriveBuilder } from '../payload/build-pool.js';
import type { PrebuiltDrive } from '../payload/prebuilt.js';
import { generationOf, type Instance, type InstanceHistory } from '../payload/instance-lineage.js';
import { committedRecord, detachedRecord, historyOf, recordFor, settledRecord, type AttachedPayload, type DomainRecord, type InitializationState, type PayloadStore, type PendingChange, type PendingImage, pendingImageOf } from '../payload/store.js';
import { createDomain, type CreateResult } from './create.js';
import { KeyedLock } from './keyed-lock.js';
import { DEFAULT_SETTLE, keepLineage, settle, type SettleOptions } from './recover.js';
import { ensureChannel, undoChannel } from './channel.js';
import { assertSource, insertMedia, insertRefused, readOurDrive, removeMedia, trayRefused, undoMedia, type MediaChange, type OurDrive } from './media.js';
import { markOf } from './record.js';
import { refuseIfSaved, runEnded } from './saved-state.js';
import type { AffectFlags, DomainControl, DomainRef } from './ports.js';
import type { VdsmCreate } from './vdsm-xml.js';

/**
 * What a drive is made from: a source the builder builds (a document or raw file tree,
 * on a build thread in the daemon; or settings parsed already), or a drive built
 * earlier and loaded.
 */
export type DriveInput = BuildSource | PrebuiltDrive;

export type Notify = (method: 'Payload.attached' | 'Payload.removed' | 'VM.initialized', params: Record<string, unknown>) => void;

export interface VmServiceDeps {
  readonly hv: DomainControl;
  readonly store: PayloadStore;
  /** The ISO writer builds use; the builder may run them on another thread. */
  readonly writer: WriterName;
  /** Builds documents and raw trees; the default builds on this thread. */
  readonly builder?: DriveBuilder;
  readonly label?: string;
  readonly notify?: Notify;
  /** Cleanup failures during a rollback: reported, never hiding the original error. */
  readonly warn?: (message: string) => void;
  readonly now?: () => Date;
  /**
   * Called once a started domain's record is committed, before it resumes: the
   * VM.initialized watcher connects then, so not even the first line can be missed.
   * Its failure only warns: the guest runs its drive either way.
   */
  readonly onRun?: (dom: DomainRef) => Promise<unknown>;
  /** Shared with the migration flows (src/vm/emigrate.ts, immigrate.ts): one change per domain at a time. */
  readonly lock?: KeyedLock;
  readonly settle?: SettleOptions;
}

export interface ChangeOptions {
  /** A new instance even when the settings are unchanged: cloud-init runs again. */
  readonly reinitialize?: boolean;
}

export interface StartOptions extends ChangeOptions {
  /** false: oVirt's Run Once, the drive in this run of the domain only. */
  readonly persistent?: boolean;
}

export interface AttachResult {
  readonly domain: DomainRef;
  readonly payload: AttachedPayload;
  /** False when the domain already had exactly this drive. */
  readonly changed: boolean;
  /** Which instance the drive is, and why (a new one, or the same as before). */
  readonly instance: Instance;
  readonly verified: { readonly liveSource: boolean; readonly label: string; readonly files: number };
  readonly warnings: readonly string[];
  /** Set when the running guest does not have the drive in this run, saying why. */
  readonly deferred: string | null;
}

/** How apply() puts the drive in; `liveEmpty`: in the definition only, the run's tray empty. */
interface ApplyMode {
  readonly runOnce: boolean;
  readonly start: boolean;
  readonly liveEmpty?: boolean;
}

export class VmService {
  private readonly lock: KeyedLock;
  private readonly label: string;
  private readonly builder: DriveBuilder;
  private writer: WriterName;

  constructor(private readonly deps: VmServiceDeps) {
    this.lock = deps.lock ?? new KeyedLock();
    this.label = deps.label ?? DEFAULT_LABEL;
    this.builder = deps.builder ?? inlineBuilder;
    this.writer = deps.writer;
  }

  /** The ISO writer for builds from now on (SIGHUP may change it). */
  useWriter(writer: WriterName): void {
    this.writer = writer;
  }

  /** The "run once with cloud-init" flow. */
  async start(domain: string, init: DriveInput, options: StartOptions = {}): Promise<AttachResult> {
    const { hv } = this.deps;
    const dom = await hv.lookup(domain);
    return this.lock.run(dom.uuid, async () => {
      await this.settleFirst(dom);
      const state = await hv.state(dom);
      if (state !== 'shutoff') {
        throw new AgentError('DOMAIN_STATE', `domain ${dom.name} is ${state}; VM.start needs it shut off (Payload.attach changes the media of a running domain)`);
      }
      await refuseIfSaved(hv, dom, 'VM.start');
      const runOnce = options.persistent === false;
      const ours = await readOurDrive(hv, dom, false);
      const image = await this.build(init, ours, options);
      const applied = await this.apply(dom, ours, image, { config: true }, { runOnce, start: true });
      let started = false;
      try {
        // The same drive again journals nothing else: the start itself is, so that a
        // crash in it leaves no paused guest that nothing resumes.
        if (!applied.changed && applied.previous !== undefined) await this.deps.store.writeRecord({ ...settledRecord(applied.previous), pending: { op: 'resume', startedAt: this.now() } });
        await hv.start(dom, { paused: true });
        started = true;
        await assertSource(hv, dom, applied.payload.target, applied.payload.path, true);
        await this.verifyOnDisk(applied.payload.path, image);
        // Run Once: the running domain keeps the device, its definition loses it again.
        if (runOnce) await removeMedia(hv, dom, await readOurDrive(hv, dom, false), { config: true });
        // Committed while the guest is still paused, with the resume to come journaled:
        // once it runs, nothing is left that can fail, so the reply never says "failed"
        // about a guest running our drive, and a crash before the resume is finished by
        // recovery resuming it.
        await this.commitRecord(dom, applied, true, { op: 'resume', startedAt: this.now() });
        await this.deps.onRun?.(dom).catch((err: unknown) => this.deps.warn?.(`cannot read the VM.initialized channel of ${dom.name}: ${err instanceof Error ? err.message : String(err)}`));
        await hv.resume(dom);
      } catch (err) {
        if (started) await this.cleanup(`destroy ${dom.name}`, () => hv.destroy(dom));
        await this.rollback(dom, applied);
        throw err;
      }
      await this.cleanup(`note that ${dom.name} was resumed`, () => this.resumed(dom));
      return this.finish(dom, applied, image, true, null);
    });
  }

  /**
   * VDSM's VM.create: a new domain from oVirt engine's XML, its PAYLOAD: CD-ROM filled
   * with the payload built and stored (src/vm/create.ts), serialized with every other
   * change to that domain UUID.
   */
  async create(request: VdsmCreate): Promise<CreateResult> {
    return this.lock.run(request.uuid, async () => {
      const result = await createDomain(
        {
          hv: this.deps.hv,
          store: this.deps.store,
          build: (source, facts) => this.builder.build(this.job(source, facts)),
          verifyOnDisk: (path, image) => this.verifyOnDisk(path, image),
          now: () => this.now(),
          cleanup: (what, step) => this.cleanup(what, step),
          ...(this.deps.onRun === undefined ? {} : { onRun: this.deps.onRun }),
          ...(this.deps.warn === undefined ? {} : { warn: this.deps.warn }),
        },
        request,
      );
      const { path, sha256, instanceId, generation, reason, target } = result.payload;
      this.deps.notify?.('Payload.attached', { domain: result.domain, path, sha256, instanceId, generation, reason, target });
      return result;
    });
  }

  /**
   * Puts the drive in front of the domain in whatever state it is, without starting it.
   * When QEMU takes a running guest's drive out and then refuses the new one (insertRefused),
   * the new drive goes into the definition only and the reply's `deferred` says the run's
   * tray is empty; later changes in that run go to the definition only too, since
   * libvirt's view of that tray stays wrong until the run ends.
   */
  async attach(domain: string, init: DriveInput, options: ChangeOptions = {}): Promise<AttachResult> {
    const { hv, store } = this.deps;
    const dom = await hv.lookup(domain);
    return this.lock.run(dom.uuid, async () => {
      await this.settleFirst(dom);
      const running = (await hv.state(dom)) !== 'shutoff';
      if (!running) await refuseIfSaved(hv, dom, 'Payload.attach');
      let live = running && (await store.readRecord(dom.uuid))?.current?.liveEmpty !== true;
      const ours = await readOurDrive(hv, dom, live);
      const image = await this.build(init, ours, options);
      let applied: Applied;
      let refused: unknown;
      try {
        applied = await this.apply(dom, ours, image, live ? { live: true, config: true } : { config: true }, { runOnce: false, start: false, liveEmpty: running && !live });
      } catch (err) {
        // apply has undone what it could; the guest's tray stays empty whatever it tried.
        if (!live || !insertRefused(err)) throw err;
        refused = err;
        live = false;
        applied = await this.apply(dom, await readOurDrive(hv, dom, false), image, { config: true }, { runOnce: false, start: false, liveEmpty: true });
      }
      try {
        await assertSource(hv, dom, applied.payload.target, applied.payload.path, live);
        await this.verifyOnDisk(applied.payload.path, image);
        await this.commitRecord(dom, applied, live);
      } catch (err) {
        await this.rollback(dom, applied);
        throw err;
      }
      const deferred =
        applied.payload.liveEmpty !== true
          ? null
          : `the running guest's CD-ROM stays empty until it stops (${refused === undefined ? 'QEMU refused an earlier drive in this run' : `QEMU took the previous drive out and refused this one: ${refused instanceof Error ? refused.message : String(refused)}`}); ` +
            "the definition has the drive, which the domain's next start reads (a reboot inside this run does not)";
      return this.finish(dom, applied, image, live, deferred);
    });
  }

  /**
   * The domain no longer gets the drive: the definition loses it at once. A running guest
   * loses it now too, unless QEMU refuses the eject (right after a start the firmware can
   * leave libvirt believing the tray open while QEMU has it closed, and no retry or force
   * helps: docs/libvirt.md). Then the drive stays in this run only, like a Run Once drive,
   * and goes with its image when the domain stops; `deferred` says so.
   */
  async detach(domain: string): Promise<{ domain: DomainRef; removed: AttachedPayload | null; deferred: string | null }> {
    const { hv, store } = this.deps;
    const dom = await hv.lookup(domain);
    return this.lock.run(dom.uuid, async () => {
      await this.settleFirst(dom);
      const record = await store.readRecord(dom.uuid);
      const live = (await hv.state(dom)) !== 'shutoff';
      if (!live) await refuseIfSaved(hv, dom, 'Payload.detach');
      const config = await readOurDrive(hv, dom, false);
      if (config.record === undefined && record?.current === undefined) {
        throw new AgentError('PAYLOAD_NOT_FOUND', `domain ${dom.name} has no drive from this agent`);
      }
      const kept = recordFor(record, dom);
      await store.writeRecord({ ...kept, pending: { op: 'detach', startedAt: this.now() } });
      let refused: unknown;
      try {
        // A tray QEMU already emptied (liveEmpty) has nothing to eject.
        if (live && record?.current?.liveEmpty !== true) await removeMedia(hv, dom, await readOurDrive(hv, dom, true), { live: true });
      } catch (err) {
        if (!trayRefused(err) || kept.current === undefined) {
          // Nothing was taken out: libvirt, QEMU and the record go on naming the drive,
          // and its image stays (QEMU holds it).
          await this.cleanup(`restore the record of ${dom.name}`, () => store.writeRecord(kept));
          throw err;
        }
        refused = err;
      }
      await removeMedia(hv, dom, config, { config: true });
      const removed = record?.current ?? null;
      if (refused !== undefined && kept.current !== undefined) {
        // The running guest keeps the drive for this run; its image goes when the run ends.
        await store.writeRecord({ ...kept, current: { ...kept.current, runOnce: true } });
        const why = refused instanceof Error ? refused.message : String(refused);
        return { domain: dom, removed, deferred: `the running guest keeps the drive until it stops (QEMU refused the eject: ${why}); the definition no longer has it` };
      }
      const path = record?.current?.path ?? config.record?.path;
      if (path !== undefined) await store.removeImage(path);
      await keepLineage(store, kept, dom, live);
      this.deps.notify?.('Payload.removed', { domain: dom, path: path ?? null });
      return { domain: dom, removed, deferred: null };
    });
  }

  async get(domain: string): Promise<{ domain: DomainRef; payload: AttachedPayload | null; pending: boolean; lineage: InstanceHistory | null; initialization: InitializationView | null }> {
    const dom = await this.deps.hv.lookup(domain);
    const record = await this.lock.run(dom.uuid, async () => this.endRunOnce(dom, await this.deps.store.readRecord(dom.uuid)));
    const init = record?.initialization;
    const view = init === undefined ? null : { ...init, ...(init.state === 'pending' ? { pendingSeconds: Math.round((Date.parse(this.now()) - Date.parse(init.since)) / 1000) } : {}) };
    return { domain: dom, payload: record?.current ?? null, pending: record?.pending !== undefined, lineage: historyOf(record) ?? null, initialization: view };
  }

  /** Changes a domain's record under its lock (the VM.initialized watcher's entry). */
  async updateRecord(uuid: string, change: (record: DomainRecord | undefined) => DomainRecord | undefined): Promise<void> {
    await this.lock.run(uuid, async () => {
      const before = await this.deps.store.readRecord(uuid);
      const after = change(before);
      if (after !== undefined && after !== before) await this.deps.store.writeRecord(after);
    });
  }

  /**
   * What lasts only for a run, once the run has ended: a Run Once drive is gone (the
   * definition never had it; its image goes, the lineage stays), and a tray QEMU left
   * empty (liveEmpty) is behind us, the definition's drive being what the next start
   * reads. Returns the record as it is now.
   */
  private async endRunOnce(dom: DomainRef, record: DomainRecord | undefined): Promise<DomainRecord | undefined> {
    const current = record?.current;
    if (record === undefined || current === undefined || record.pending !== undefined || (current.runOnce !== true && current.liveEmpty !== true)) return record;
    // A saved guest's run goes on when it is restored, with the drive it had (saved-state.ts).
    if (!(await runEnded(this.deps.hv, dom))) return record;
    if (current.runOnce !== true) {
      const { liveEmpty: _ended, ...kept } = current;
      const settled: DomainRecord = { ...record, current: kept };
      await this.deps.store.writeRecord(settled);
      return settled;
    }
    await this.deps.store.removeImage(current.path);
    const kept = detachedRecord(record, dom, true);
    if (kept === undefined) await this.deps.store.removeRecord(dom.uuid);
    else await this.deps.store.writeRecord(kept);
    this.deps.notify?.('Payload.removed', { domain: dom, path: current.path, reason: 'run ended' });
    return kept;
  }

  /**
   * Drops the drives of domains that no longer exist (undefined behind the agent's back):
   * record and image go, and a Payload.removed notification says so. libvirt's domain
   * list is polled rather than its events followed: a poll needs no callback into
   * JavaScript from libvirt's threads and sees changes made while the agent was down.
   */
  async sweepVanished(): Promise<string[]> {
    const { hv, store } = this.deps;
    const alive = new Set((await hv.listDomains()).map((d) => d.uuid));
    const removed: string[] = [];
    for (const record of await store.listRecords()) {
      // A record with a change pending is settlePending's: a migration prepared here names
      // a domain that has not arrived yet.
      if (alive.has(record.uuid) || record.pending !== undefined) continue;
      await this.lock.run(record.uuid, async () => {
        // Looked up again under the lock: a define racing the poll keeps its drive.
        const still = await hv.lookup(record.uuid).then(
          () => true,
          (err: unknown) => !(err instanceof AgentError && err.code === 'DOMAIN_NOT_FOUND'),
        );
        const latest = await store.readRecord(record.uuid);
        if (still || latest === undefined || latest.pending !== undefined) return;
        if (latest.current !== undefined) await store.removeImage(latest.current.path);
        await store.removeRecord(latest.uuid);
        removed.push(latest.uuid);
        this.deps.notify?.('Payload.removed', { domain: { uuid: latest.uuid, name: latest.name }, path: latest.current?.path ?? null, reason: 'domain undefined' });
      });
    }
    return removed;
  }

  /**
   * Drives of one run only (Run Once, or a detach QEMU refused) whose run has ended: their
   * images go, the lineage stays. Returns the domains whose drive went.
   */
  async endFinishedRuns(): Promise<string[]> {
    const ended: string[] = [];
    for (const { uuid } of (await this.deps.store.listRecords()).filter((r) => r.current?.runOnce === true || r.current?.liveEmpty === true)) {
      await this.lock.run(uuid, async () => {
        const record = await this.deps.store.readRecord(uuid);
        const dom = record === undefined ? undefined : await this.deps.hv.lookup(uuid).catch(() => undefined);
        if (dom === undefined) return;
        if ((await this.endRunOnce(dom, record))?.current === undefined) ended.push(uuid);
      });
    }
    return ended;
  }

  /**
   * Half-done changes that start-up recovery could not resolve (libvirt refused to act
   * on the domain then), tried again, each under its domain's lock. Returns the domains
   * settled; those still refused stay for the next try.
   */
  async settlePending(): Promise<{ settled: string[]; failed: { uuid: string; error: string }[] }> {
    const settled: string[] = [];
    const failed: { uuid: string; error: string }[] = [];
    for (const { uuid } of (await this.deps.store.listRecords()).filter((r) => r.pending !== undefined)) {
      await this.lock.run(uuid, async () => {
        const record = await this.deps.store.readRecord(uuid);
        if (record?.pending === undefined) return;
        try {
          await settle(this.deps.hv, this.deps.store, record, this.deps.settle ?? DEFAULT_SETTLE);
          settled.push(uuid);
        } catch (err) {
          failed.push({ uuid, error: err instanceof Error ? err.message : String(err) });
        }
      });
    }
    return { settled, failed };
  }

  /** A change never starts on top of one a crash left half done: that one is resolved first. */
  private async settleFirst(dom: DomainRef): Promise<void> {
    const record = await this.endRunOnce(dom, await this.deps.store.readRecord(dom.uuid));
    if (record?.pending === undefined) return;
    try {
      await settle(this.deps.hv, this.deps.store, record, this.deps.settle ?? DEFAULT_SETTLE);
    } catch (err) {
      // A migration under way says so itself (src/vm/migration-state.ts).
      if (record.pending.op === 'emigrate' || record.pending.op === 'immigrate') throw err;
      throw new AgentError('DOMAIN_STATE', `domain ${dom.name} has a change left half done by a crash that libvirt cannot resolve yet, so no new change is made: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** The domains the agent holds a drive (or a half-done change) for. */
  async list(): Promise<DomainRecord[]> {
    return (await this.deps.store.listRecords()).filter((r) => r.current !== undefined || r.pending !== undefined);
  }

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  private async build(input: DriveInput, ours: OurDrive, options: ChangeOptions): Promise<DriveImage> {
    const record = await this.deps.store.readRecord(ours.desc.uuid);
    const history = historyOf(record) ?? metadataHistory(ours, ours.desc.uuid);
    const lineage: LineageOptions = { ...(history === undefined ? {} : { history }), ...(options.reinitialize === true ? { reinitialize: true } : {}) };
    if (input.kind === 'prebuilt') {
      // Read and checked by loadPrebuiltDrive; stored as a copy and read back like any other.
      return foreignImage({ bytes: input.bytes, label: this.label, tree: input.tree, warnings: [] }, input.instanceId, ours.desc.uuid, lineage);
    }
    return this.builder.build(this.job(input, await this.facts(ours, history, true), lineage));
  }

  /** What the translators know of the domain; `named`: its name too, for meta_data.json. */
  private async facts(ours: OurDrive, history: InstanceHistory | undefined, named: boolean): Promise<DomainFacts> {
    const { uuid, name, macs } = ours.desc;
    return {
      uuid,
      ...(named ? { name } : {}),
      nics: macs.map((mac) => ({ mac })),
      reportKey: await this.deps.store.reportKey(),
      ...(history?.nonce === undefined ? {} : { knownNonce: { instanceId: history.instanceId, nonce: history.nonce } }),
    };
  }

  private job(source: BuildSource, facts: DomainFacts, lineage?: LineageOptions): BuildJob {
    return { source, facts, label: this.label, writer: this.writer, ...(lineage === undefined ? {} : { lineage }) };
  }

  /**
   * Payload.build: the drive for `domain` (its UUID and NICs), stored with the domain's
   * images, or for no domain, kept among the builds; verified on disk, attached nowhere.
   */
  async buildOnly(source: BuildSource, domain?: string): Promise<SavedBuild> {
    const { hv, store } = this.deps;
    if (domain === undefined) {
      const saved = await this.builder.buildToFile(this.job(source, { uuid: randomUUID(), nics: [] }), store.buildsTarget);
      this.builder.discard(await store.noteBuild(saved.path));
      return saved;
    }
    const ours = await readOurDrive(hv, await hv.lookup(domain), false);
    const history = historyOf(await store.readRecord(ours.desc.uuid)) ?? metadataHistory(ours, ours.desc.uuid);
    const image = await this.builder.build(this.job(source, await this.facts(ours, history, false), history === undefined ? {} : { history }));
    const path = await store.putImage(ours.desc.uuid, image.bytes, image.sha256);
    await this.verifyOnDisk(path, image);
    return savedBuild(path, image);
  }

  private async verifyOnDisk(path: string, image: DriveImage): Promise<void> {
    verifyImage(await readIsoFile(path), image.tree, image.label, path);
  }

  /**
   * Stores the image and puts it in our CD-ROM for `flags`, journaled. Nothing changes
   * when the domain already has this exact drive (same content, still in place).
   */
  private async apply(dom: DomainRef, ours: OurDrive, image: DriveImage, flags: AffectFlags, mode: ApplyMode): Promise<Applied> {
    const { store, hv } = this.deps;
    const previous = await store.readRecord(dom.uuid);
    // Run Once always puts the drive in again: it leaves the definition before the run.
    const same = !mode.runOnce && ours.present && ours.record?.contentDigest === image.contentDigest && previous?.current?.contentDigest === image.contentDigest;
    if (same && previous?.current !== undefined) {
      // A drive attached before the channel existed gets it now; the channel alone is
      // harmless in any state, so this needs no journal entry.
      if (flags.config === true) await ensureChannel(hv, dom, store.channelPath(dom.uuid));
      return { payload: previous.current, previous, changed: false };
    }

    const path = await store.putImage(dom.uuid, image.bytes, image.sha256);
    const pendingPayload: PendingImage = {
      ...pendingImageOf(image, path, this.now()),
      ...(mode.runOnce ? { runOnce: true } : {}),
      ...(mode.liveEmpty === true ? { liveEmpty: true } : {}),
    };
    const { attachedAt } = pendingPayload;
    const mark = markOf(pendingPayload);
    const base = recordFor(previous, dom);
    await store.writeRecord({ ...base, pending: { op: 'attach', image: pendingPayload, startedAt: attachedAt, ...(mode.start ? { start: true } : {}) } });
    let change: MediaChange | undefined;
    let channel: Applied['channel'];
    try {
      // The channel goes in with the drive, in the same journaled change: a definition
      // change only, which the guest sees from its next start on.
      if (flags.config === true) channel = await ensureChannel(hv, dom, store.channelPath(dom.uuid));
      change = await insertMedia(hv, dom, ours, mark, flags);
      const payload: AttachedPayload = { ...pendingPayload, target: change.target, bus: change.bus };
      return { payload, previous, changed: true, change, ...(channel === undefined ? {} : { channel }) };
    } catch (err) {
      await this.rollback(dom, { payload: pendingPayload, previous, changed: true, ...(change === undefined ? {} : { change }), ...(channel === undefined ? {} : { channel }) });
      throw err;
    }
  }

  private async rollback(dom: DomainRef, applied: Rollback): Promise<void> {
    if (!applied.changed) return;
    const { hv, store } = this.deps;
    if (applied.change !== undefined) await this.cleanup(`restore the CD-ROM of ${dom.name}`, () => undoMedia(hv, dom, applied.change!));
    if (applied.channel !== undefined) await this.cleanup(`remove the channel of ${dom.name}`, () => undoChannel(hv, dom, applied.channel!));
    if (applied.payload.path !== applied.previous?.current?.path) await this.cleanup(`remove ${applied.payload.path}`, () => store.removeImage(applied.payload.path));
    await this.cleanup(`restore the record of ${dom.name}`, () =>
      applied.previous === undefined ? store.removeRecord(dom.uuid) : store.writeRecord(recordFor(applied.previous, dom)),
    );
  }

  /**
   * The last step that may fail: the record names the new drive as current and its
   * instance as the domain's last. `running`: the guest runs (or is about to run) it.
   */
  private async commitRecord(dom: DomainRef, applied: Applied, running: boolean, next?: PendingChange): Promise<void> {
    const { store } = this.deps;
    const then = next === undefined ? {} : { pending: next };
    if (!applied.changed) {
      // The same drive again; only the note that the guest has run it, and the resume to
      // come, may be new.
      const lineage = historyOf(applied.previous);
      if (applied.previous !== undefined && (next !== undefined || (running && lineage !== undefined && !lineage.seenRunning))) {
        await store.writeRecord({ ...settledRecord(applied.previous), ...(lineage === undefined ? {} : { lineage: { ...lineage, seenRunning: lineage.seenRunning || running } }), ...then });
      }
      return;
    }
    // If this rename is lost in a crash, recovery finds the pending attach and, libvirt
    // showing our image, finishes it (src/vm/recover.ts).
    await store.writeRecord({ ...committedRecord(applied.previous, dom, applied.payload, running), ...then }, { redoable: true });
  }

  /** VM.start's resume is done: its journal entry goes. */
  private async resumed(dom: DomainRef): Promise<void> {
    const record = await this.deps.store.readRecord(dom.uuid);
    if (record?.pending?.op === 'resume') await this.deps.store.writeRecord(settledRecord(record));
  }

  /** After the commit: nothing here fails the request (the replaced image's removal only warns). */
  private async finish(dom: DomainRef, applied: Applied, image: DriveImage, liveChecked: boolean, deferred: string | null): Promise<AttachResult> {
    const { store } = this.deps;
    if (applied.changed) {
      const old = applied.previous?.current?.path;
      if (old !== undefined && old !== applied.payload.path) await this.cleanup(`remove the replaced ${old}`, () => store.removeImage(old));
      const { path, sha256, instanceId, generation, reason, target } = applied.payload;
      this.deps.notify?.('Payload.attached', { domain: dom, path, sha256, instanceId, generation, reason, target });
    }
    return {
      domain: dom,
      payload: applied.payload,
      changed: applied.changed,
      instance: image.instance,
      verified: { liveSource: liveChecked, label: image.label, files: image.tree.size },
      warnings: [...image.warnings, ...cachedInstanceWarnings(dom, historyOf(applied.previous), image)],
      deferred,
    };
  }

  private async cleanup(what: string, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.deps.warn?.(`rollback step failed: ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/**
 * cloud-init's ConfigDrive trusts its cached instance on every boot while that instance's
 * id equals the SMBIOS system UUID (check_instance_id), without reading any drive: seen
 * on a real Debian 12 guest (test/e2e). A drive whose id is the UUID (a caller's own, or
 * one made elsewhere) is the last this guest will ever read, and a guest that ran such a
 * drive (an agent 0.1 drive) reads none of ours.
 */
function cachedInstanceWarnings(dom: DomainRef, history: InstanceHistory | undefined, image: DriveImage): string[] {
  const id = image.instance.instanceId;
  if (id === dom.uuid && history?.instanceId !== dom.uuid) {
    return [
      `instance-id ${id} is the domain UUID, which QEMU shows the guest as its system UUID: cloud-init will trust this instance ` +
        'from its cache on every later boot and never read a later drive; leave instance_id out to get the agent\'s <uuid>-g<N> ids',
    ];
  }
  if (history?.instanceId === dom.uuid && id !== dom.uuid) {
    return [
      `this guest's cloud-init ran with instance-id ${dom.uuid}, the domain UUID: it keeps that instance from its cache and does not ` +
        'read this drive (cloud-init trusts a cached instance-id equal to the system UUID); run `cloud-init clean` in the guest once to let it',
    ];
  }
  return [];
}

/** A drive attached by an agent whose store was lost: what the domain's metadata says of it. */
function metadataHistory(ours: OurDrive, uuid: string): InstanceHistory | undefined {
  const mark = ours.record;
  if (mark?.instanceId === undefined || mark.contentDigest === undefined) return undefined;
  const generation = (mark.generation === undefined ? undefined : Number(mark.generation)) ?? generationOf(mark.instanceId, uuid) ?? 1;
  return { generation, instanceId: mark.instanceId, contentDigest: mark.contentDigest, firstInstance: generation === 1, seenRunning: true };
}

interface Applied {
  readonly payload: AttachedPayload;
  readonly previous: DomainRecord | undefined;
  readonly changed: boolean;
  readonly change?: MediaChange;
  readonly channel?: { added: string; replaced?: string };
}

/** What a rollback undoes: an applied change, or one cut off before its device was chosen. */
type Rollback = Omit<Applied, 'payload'> & { readonly payload: PendingImage };

/** Payload.get's view of VM.initialized: the record's state, and how long a pending one has waited. */
export type InitializationView = InitializationState & { readonly pendingSeconds?: number };

/**
 * The payload store: the agent's own directory of images and per-domain records.
 *
 *   STATE/                                    0711 root: searchable, not listable
 *   STATE/images/                             0710 root:QEMU's group
 *   STATE/images/<uuid>-<sha256 prefix>.iso   0640 root:QEMU's group
 *   STATE/domains/<uuid>.json                 0700 dir, 0600 files: what the agent holds for a domain
 *   STATE/builds/                             0700: Payload.build results, never shown to QEMU
 *   STATE/channels/<uuid>.sock                0700 dir: the VM.initialized channels (libvirt binds
 *                                             each socket and hands QEMU the descriptor)
 *   STATE/report.key                          0600: the key report nonces derive from
 *
 * QEMU (another user under libvirtd) can open an image whose path it is given and
 * nothing else: it cannot list images/, and records and builds are closed to it. The
 * layout is set at every start, so a changed QEMU group or an older layout is put right.
 *
 * Every change to a domain is journaled in its record before it is made: the record
 * gains a `pending` entry (what is about to be attached or removed, and what was there
 * before), the change is made in libvirt, then the record is committed. A crash between
 * the steps leaves a `pending` entry that recovery (src/vm/recover.ts) resolves by
 * looking at what libvirt actually has. Records never hold file contents or secrets.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AgentError } from '../errors.js';
import type { CdromBus } from '../vm/domain-xml.js';
import { TEMP_PREFIX, writeFileAtomic } from './atomic-write.js';
import type { DriveImage } from './build-drive.js';
import type { BuildsDir } from './build-job.js';
import { generationOf, type InstanceHistory, type InstanceReason } from './instance-lineage.js';
import { assertQemuCanRead, type Identity } from './qemu-access.js';

/** One image the agent put (or is putting) in front of a domain. */
export interface ImageRef {
  readonly path: string;
  readonly sha256: string;
  readonly contentDigest: string;
  readonly instanceId: string;
  /** Absent in records written before instance generations (agent 0.1). */
  readonly generation?: number;
  readonly reason?: InstanceReason;
  readonly firstInstance?: boolean;
  readonly label: string;
  readonly size: number;
  /**
   * The VM.initialized nonce on the drive, kept with it so that the guest's report is
   * judged by the drive's own nonce on whichever host it runs (a migrated drive was built
   * under another host's key). Never shown in a reply.
   */
  readonly nonce?: string;
}

/** An image on its way into a domain: all but the device, which the change then picks. */
export interface PendingImage extends ImageRef {
  readonly attachedAt: string;
  /**
   * oVirt's Run Once: the drive is in the running domain only, not in its definition;
   * it is gone once the domain stops (src/vm/service.ts settles that).
   */
  readonly runOnce?: boolean;
  /**
   * The definition has the drive, the running guest's CD-ROM is empty until this run
   * ends: QEMU refused to insert it after taking the previous drive out (insertRefused in
   * src/vm/media.ts). libvirt's live definition is stale then, naming the previous drive.
   */
  readonly liveEmpty?: boolean;
}

/** A stored image as the record names it while its change is under way. */
export function pendingImageOf(image: DriveImage, path: string, attachedAt: string): PendingImage {
  const { instance } = image;
  return {
    path,
    sha256: image.sha256,
    contentDigest: image.contentDigest,
    instanceId: instance.instanceId,
    generation: instance.generation,
    reason: instance.reason,
    firstInstance: instance.firstInstance,
    label: image.label,
    size: image.bytes.length,
    ...(image.nonce === undefined ? {} : { nonce: image.nonce }),
    attachedAt,
  };
}

export interface AttachedPayload extends PendingImage {
  /** Target dev of the agent's CD-ROM, e.g. `sdb`. */
  readonly target: string;
  readonly bus: CdromBus;
}

export interface PendingChange {
  /**
   * `resume`: VM.start committed its drive while the guest was paused and is about to
   * resume it. A crash then leaves a paused guest nothing else would ever resume.
   * `emigrate`: the source of a migration handed out the drive (Payload.migrationBegin);
   * no change is made until it is settled. `immigrate`: the destination holds the drive
   * it was handed (Payload.migrationPrepare) for a domain that has not arrived yet.
   * Both are resolved from what libvirt shows (src/vm/migration-state.ts).
   */
  readonly op: 'attach' | 'detach' | 'resume' | 'emigrate' | 'immigrate';
  /** For attach: the image being put in. */
  readonly image?: PendingImage;
  /** For attach: VM.start's, which starts the domain paused once the drive is in. */
  readonly start?: true;
  /** For attach: VM.create's, whose domain did not exist before it; undone by undefining it. */
  readonly create?: true;
  readonly startedAt: string;
}

export interface DomainRecord {
  readonly version: 1;
  readonly uuid: string;
  readonly name: string;
  readonly current?: AttachedPayload;
  readonly pending?: PendingChange;
  /**
   * The last instance the agent gave the domain, kept after its drive is detached, so
   * that the next drive is a new instance only when its settings are new.
   */
  readonly lineage?: InstanceHistory;
  /** What the guest last reported over the agent's channel (src/vm/init-state.ts). */
  readonly initialization?: InitializationState;
}

/**
 * VM.initialized as recorded: `pending` from the moment a run of the domain with the
 * current drive was seen, until that run's guest reports; `done` or `error` with what it
 * reported. A run is libvirt's domain id: a new QEMU is a new run.
 */
export interface InitializationState {
  readonly state: 'pending' | 'done' | 'error';
  readonly instanceId: string;
  readonly run: number;
  readonly since: string;
  readonly reportedAt?: string;
  readonly bootId?: string;
  /** Guest clock when the line was written. */
  readonly sentAt?: number | null;
  readonly errors?: readonly string[];
  readonly stages?: Readonly<Record<string, { readonly start: number | null; readonly finished: number | null }>>;
  /** From the start of cloud-init's first stage to the end of its last, guest clock. */
  readonly seconds?: number | null;
}

/** What a record says of the domain's last instance; records from agent 0.1 have no lineage. */
export function historyOf(record: DomainRecord | undefined): InstanceHistory | undefined {
  if (record?.lineage !== undefined) return record.lineage;
  const c = record?.current;
  if (c === undefined) return undefined;
  const generation = c.generation ?? generationOf(c.instanceId, record!.uuid) ?? 1;
  // An older agent's drive: the guest may well have run it, so its host keys are kept.
  return { generation, instanceId: c.instanceId, contentDigest: c.contentDigest, firstInstance: c.firstInstance ?? generation === 1, seenRunning: true, ...nonceOf(c) };
}

const nonceOf = (image: ImageRef): { nonce?: string } => (image.nonce === undefined ? {} : { nonce: image.nonce });

/** The record with its half-done change dropped: what a rollback returns to. */
export function settledRecord(record: DomainRecord): DomainRecord {
  const { pending: _dropped, ...rest } = record;
  return rest;
}

/** The domain's record with no change pending, under the domain's name now; a new one if it has none. */
export function recordFor(record: DomainRecord | undefined, ref: { readonly uuid: string; readonly name: string }): DomainRecord {
  return record === undefined ? { version: 1, uuid: ref.uuid, name: ref.name } : { ...settledRecord(record), name: ref.name };
}

/** The record once `current` is committed: its instance becomes the domain's last one. */
export function committedRecord(previous: DomainRecord | undefined, ref: { uuid: string; name: string }, current: AttachedPayload, seenRunning: boolean): DomainRecord {
  const before = historyOf(previous);
  const generation = current.generation ?? generationOf(current.instanceId, ref.uuid) ?? 1;
  const lineage: InstanceHistory = {
    generation,
    instanceId: current.instanceId,
    contentDigest: current.contentDigest,
    firstInstance: current.firstInstance ?? generation === 1,
    seenRunning: seenRunning || before?.seenRunning === true,
    ...nonceOf(current),
  };
  return { version: 1, uuid: ref.uuid, name: ref.name, current, lineage };
}

/** What is kept once the drive is gone: the lineage alone, or nothing if there is none. */
export function detachedRecord(record: DomainRecord, ref: { name: string }, seenRunning: boolean): DomainRecord | undefined {
  const lineage = historyOf(record);
  if (lineage === undefined) return undefined;
  return { version: 1, uuid: record.uuid, name: ref.name, lineage: { ...lineage, seenRunning: lineage.seenRunning || seenRunning } };
}

/**
 * Whether a QEMU process has `path` open, by inode (a hard link elsewhere is the same
 * file). Only processes named qemu* are looked into: their descriptors, not everyone's.
 */
async function heldByQemu(path: string): Promise<boolean> {
  const file = await stat(path).catch(() => undefined);
  if (file === undefined) return false;
  // All at once, not one after another: each read is a round trip to libuv's thread pool,
  // and one at a time they made this scan most of what VM.start spends beside QEMU's start
  // (12 ms for 70 processes here; 2.6 ms in parallel).
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  const comms = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')));
  const qemus = pids.filter((_, i) => comms[i]!.startsWith('qemu'));
  const held = await Promise.all(
    qemus.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      const opens = await Promise.all(fds.map((fd) => stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined)));
      return opens.some((open) => open !== undefined && open.ino === file.ino && open.dev === file.dev);
    }),
  );
  return held.includes(true);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checkUuid(uuid: string): string {
  // The UUID becomes a file name: only libvirt's canonical form is accepted.
  if (!UUID.test(uuid)) throw new AgentError('INTERNAL', `"${uuid}" is not a canonical domain UUID`);
  return uuid;
}

export interface StoreOptions {
  readonly dir: string;
  /** Group of the QEMU user, so QEMU can read the 0640 images; undefined keeps ours. */
  readonly imageGid?: number;
}

/** Images built for no domain (Payload.build) kept at most; the oldest go first. */
export const MAX_BUILDS = 256;

export class PayloadStore {
  readonly imagesDir: string;
  readonly domainsDir: string;
  readonly buildsDir: string;
  readonly channelsDir: string;
  private builds: string[] | undefined;

  constructor(private readonly options: StoreOptions) {
    this.imagesDir = join(options.dir, 'images');
    this.domainsDir = join(options.dir, 'domains');
    this.buildsDir = join(options.dir, 'builds');
    this.channelsDir = join(options.dir, 'channels');
  }

  /** The socket of a domain's VM.initialized channel; a unix socket path has 107 bytes at most. */
  channelPath(uuid: string): string {
    return join(this.channelsDir, `${checkUuid(uuid)}.sock`);
  }

  /** The key report nonces derive from (hex), made once; kept with the records it protects. */
  async reportKey(): Promise<string> {
    const path = join(this.options.dir, 'report.key');
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AgentError('IO_ERROR', `cannot read ${path}: ${String((err as NodeJS.ErrnoException).code)}`, { cause: err });
    }
    const key = randomBytes(32).toString('hex');
    await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw new AgentError('IO_ERROR', `cannot write ${path}: ${String(err.code)}`, { cause: err });
    });
    return (await readFile(path, 'utf8')).trim();
  }

  /** Creates the layout, or puts an existing one right: modes, and the images' group. */
  async init(): Promise<void> {
    const gid = this.options.imageGid;
    for (const [dir, mode] of [[this.options.dir, 0o711], [this.imagesDir, 0o710], [this.domainsDir, 0o700], [this.buildsDir, 0o700], [this.channelsDir, 0o700]] as const) {
      await mkdir(dir, { recursive: true, mode });
      await chmod(dir, mode);
    }
    if (Buffer.byteLength(this.channelPath('00000000-0000-0000-0000-000000000000')) > 107) {
      throw new AgentError('HOST_SETUP', `the state directory ${this.options.dir} is too long for unix socket paths under it (107 bytes at most); choose a shorter stateDir`);
    }
    if (gid === undefined) return;
    await chown(this.imagesDir, -1, gid);
    for (const image of await this.listImages()) {
      await chown(image, -1, gid);
      await chmod(image, 0o640);
    }
  }

  /**
   * Writes a probe image exactly as images are written, and checks that `qemu` could
   * open it (src/payload/qemu-access.ts); throws HOST_SETUP with the fix otherwise.
   */
  async assertReadableBy(qemu: Identity): Promise<void> {
    const probe = join(this.imagesDir, `${TEMP_PREFIX}probe.iso`);
    await writeFileAtomic(probe, new Uint8Array(0), 0o640, this.options.imageGid, 'file');
    try {
      await assertQemuCanRead(probe, qemu);
    } finally {
      await unlink(probe).catch(() => undefined);
    }
  }

  /** Where build threads write images built for no domain (see build-job.ts). */
  get buildsTarget(): BuildsDir {
    return { dir: this.buildsDir };
  }

  /**
   * Records a build just written into buildsDir as the newest, and returns the builds
   * that fall out: at most MAX_BUILDS are kept, the least recently built go first, so
   * repeated builds cannot fill the disk. The caller removes them (a build thread, off
   * the event loop: DriveBuilder.discard). The order is kept in memory, read from the
   * directory's mtimes once, not by listing the directory on every build.
   */
  async noteBuild(path: string): Promise<string[]> {
    if (dirname(path) !== this.buildsDir) throw new AgentError('INTERNAL', `${path} is not in ${this.buildsDir}`);
    const queue = await this.buildQueue();
    const at = queue.indexOf(path);
    if (at >= 0) queue.splice(at, 1);
    queue.push(path);
    return queue.length > MAX_BUILDS ? queue.splice(0, queue.length - MAX_BUILDS) : [];
  }

  /** Build paths, oldest first. */
  private async buildQueue(): Promise<string[]> {
    if (this.builds !== undefined) return this.builds;
    const names = (await readdir(this.buildsDir)).filter((n) => n.endsWith('.iso') && !n.startsWith(TEMP_PREFIX));
    const aged = await Promise.all(names.map(async (n) => ({ path: join(this.buildsDir, n), t: await stat(join(this.buildsDir, n)).then((s) => s.mtimeMs, () => 0) })));
    // Two first builds may both get here: the first to finish wins, the other's list is dropped.
    this.builds ??= aged.sort((a, b) => a.t - b.t).map((a) => a.path);
    return this.builds;
  }

  imagePath(uuid: string, sha256: string): string {
    return join(this.imagesDir, `${checkUuid(uuid)}-${sha256.slice(0, 16)}.iso`);
  }

  /** Writes the image atomically; a QEMU that has the old file open keeps reading its inode. */
  async putImage(uuid: string, bytes: Uint8Array, sha256: string): Promise<string> {
    const path = this.imagePath(uuid, sha256);
    await writeFileAtomic(path, bytes, 0o640, this.options.imageGid);
    return path;
  }

  /**
   * Removes an image, unless a running QEMU still has it open: a media change cut off
   * inside libvirt (the embedded driver dies with the agent) can leave QEMU a block node
   * on the file that libvirt no longer knows of. Such an image stays until QEMU lets go
   * of it, and start-up recovery removes it then.
   */
  async removeImage(path: string): Promise<void> {
    await this.removeImageUnlessHeld(path);
  }

  /** removeImage, saying whether the image is gone (false: a QEMU holds it, it stays). */
  async removeImageUnlessHeld(path: string): Promise<boolean> {
    if (!path.startsWith(this.imagesDir + '/')) throw new AgentError('INTERNAL', `refusing to remove ${path}: not in the payload store`);
    if (await heldByQemu(path)) return false;
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new AgentError('IO_ERROR', `cannot remove ${path}: ${String(err.code)}`, { cause: err });
    });
    return true;
  }

  async readRecord(uuid: string): Promise<DomainRecord | undefined> {
    const path = join(this.domainsDir, `${checkUuid(uuid)}.json`);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new AgentError('IO_ERROR', `cannot read ${path}: ${String((err as NodeJS.ErrnoException).code)}`, { cause: err });
    }
    try {
      const record = JSON.parse(text) as DomainRecord;
      if (record.version !== 1 || record.uuid !== uuid) throw new Error('wrong version or uuid');
      return record;
    } catch (err) {
      throw new AgentError('IO_ERROR', `record ${path} is damaged: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /**
   * `redoable: true` is for a commit that recovery can redo: its content is synced, but
   * not its rename; if the rename is lost in a crash the previous record (with its
   * pending entry) stays, and recovery finishes the change from what libvirt shows.
   */
  async writeRecord(record: DomainRecord, options: { redoable?: boolean } = {}): Promise<void> {
    const path = join(this.domainsDir, `${checkUuid(record.uuid)}.json`);
    try {
      await writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`), 0o600, undefined, options.redoable === true ? 'file' : 'all');
    } catch (err) {
      await this.dropUnjournaled(record);
      throw err;
    }
  }

  /**
   * A journal entry for an attach that could not be written (a full disk): the image put
   * just before it is named by no record, and nothing else would remove it before the
   * next start. Kept when the record on disk still names it (the same drive again).
   */
  private async dropUnjournaled(record: DomainRecord): Promise<void> {
    const image = record.pending?.op === 'attach' ? record.pending.image?.path : undefined;
    if (image === undefined) return;
    const kept = await this.readRecord(record.uuid).catch(() => undefined);
    if (kept?.current?.path === image || kept?.pending?.image?.path === image) return;
    await this.removeImage(image).catch(() => undefined);
  }

  async removeRecord(uuid: string): Promise<void> {
    await unlink(join(this.domainsDir, `${checkUuid(uuid)}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new AgentError('IO_ERROR', `cannot remove the record of ${uuid}: ${String(err.code)}`, { cause: err });
    });
  }

  async listRecords(): Promise<DomainRecord[]> {
    const names = await readdir(this.domainsDir);
    const records: DomainRecord[] = [];
    for (const name of names.sort()) {
      const m = /^(.+)\.json$/.exec(name);
      if (m === null || !UUID.test(m[1]!)) continue;
      const record = await this.readRecord(m[1]!);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  async listImages(): Promise<string[]> {
    return (await readdir(this.imagesDir)).filter((n) => n.endsWith('.iso') && !n.startsWith(TEMP_PREFIX)).map((n) => join(this.imagesDir, n));
  }

  /** Temp files of writes that a crash interrupted; nobody can be using them. */
  async removeTempFiles(): Promise<string[]> {
    const removed: string[] = [];
    for (const dir of [this.imagesDir, this.domainsDir, this.buildsDir]) {
      for (const name of await readdir(dir)) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        await unlink(join(dir, name)).catch(() => undefined);
        removed.push(join(dir, name));
      }
    }
    return removed;
  }
}

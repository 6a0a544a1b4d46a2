/**
 * One build, from what a request carries to a checked image: the unit of work the
 * daemon hands to its build threads (build-pool.ts), or runs on its own thread when it
 * has none. Plain data in and out, so a job crosses a thread boundary as it is: the
 * document is parsed here, on the thread that builds, and its secrets never leave it
 * (only hashed passwords reach the drive; errors carry field paths, never values).
 */
import { threadId } from 'node:worker_threads';
import { DEFAULT_DRIVE_FORMAT } from '../cloudinit/index.js';
import type { DomainFacts } from '../cloudinit/types.js';
import { inCallerTerms, parseInitialization, parseInitializationValue } from '../initialization/index.js';
import { createIsoWriter, type WriterName } from '../iso/index.js';
import { writeCacheFileSync } from './atomic-write.js';
import { buildDriveImage, packRawDrive, type DriveImage, type LineageOptions } from './build-drive.js';
import type { Initialization } from '../initialization/types.js';
import type { BuildSource } from './drive-source.js';

/** Where Payload.build keeps images built for no domain (see PayloadStore.buildsDir). */
export interface BuildsDir {
  readonly dir: string;
}

export interface BuildJob {
  readonly source: BuildSource;
  readonly facts: DomainFacts;
  readonly label: string;
  readonly writer: WriterName;
  /** The domain's instance history: absent for a build for no domain. */
  readonly lineage?: LineageOptions;
}

/** A build kept as a file: what the caller is told about it, without its bytes. */
export interface SavedBuild {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly contentDigest: string;
  readonly instanceId: string;
  readonly label: string;
  readonly files: readonly { readonly path: string; readonly size: number }[];
  readonly warnings: readonly string[];
}

export interface RunOptions {
  /** Hash passwords on this thread instead of libuv's pool: true on a build thread. */
  readonly blockingHash?: boolean;
}

/** The drive for `job`, built and verified in memory; parse warnings come first. */
export async function runBuildJob(job: BuildJob, options: RunOptions = {}): Promise<DriveImage> {
  const writer = createIsoWriter(job.writer);
  const { source } = job;
  const lineage = job.lineage ?? {};
  if (source.kind === 'raw-files') return packRawDrive(source.tree, job.facts.uuid, { writer, label: source.label ?? job.label }, lineage);
  const driveFormat = source.driveFormat ?? DEFAULT_DRIVE_FORMAT;
  // The job's label is the daemon's label for config-2 drives; a NoCloud drive has its own.
  const label = driveFormat === DEFAULT_DRIVE_FORMAT ? { label: job.label } : {};
  const build = (init: Initialization) => buildDriveImage(init, job.facts, { writer, format: driveFormat, ...label, blockingHash: options.blockingHash === true }, lineage);
  if (source.kind === 'settings') return build(source.initialization);
  const parsed = typeof source.document === 'string' ? parseInitialization(source.document, source.format) : parseInitializationValue(source.document);
  const image = await inCallerTerms(parsed.sources, () => build(parsed.initialization));
  return parsed.warnings.length === 0 ? image : { ...image, warnings: [...parsed.warnings, ...image.warnings] };
}

let builds = 0;

/**
 * A build's file name: its content's hash, made unique per build, so that a build never
 * replaces a file another request was told about, and removing an old build (which
 * happens later, on any thread) can never remove a newer one of equal content.
 */
export function buildFileName(sha256: string): string {
  return `${sha256}-${String(process.pid)}.${String(threadId)}.${String(builds++)}.iso`;
}

/**
 * The drive for `job`, also written into `builds` (atomically, not fsynced: a build is a
 * cache entry nothing refers to). The bytes were read back by our reader in memory
 * before the write; the file is checked by size, not read again (a build is copied and
 * verified on disk when it is attached). Blocks its thread on the file system: for
 * build threads, or a daemon configured without them.
 */
export async function runBuildJobToFile(job: BuildJob, builds: BuildsDir, options: RunOptions = {}): Promise<SavedBuild> {
  const image = await runBuildJob(job, options);
  const path = `${builds.dir}/${buildFileName(image.sha256)}`;
  writeCacheFileSync(path, image.bytes, 0o600);
  return savedBuild(path, image);
}

/** What a caller is told about an image stored at `path`. */
export function savedBuild(path: string, image: DriveImage): SavedBuild {
  return {
    path,
    size: image.bytes.length,
    sha256: image.sha256,
    contentDigest: image.contentDigest,
    instanceId: image.instance.instanceId,
    label: image.label,
    files: [...image.tree].map(([p, b]) => ({ path: p, size: b.length })),
    warnings: image.warnings,
  };
}

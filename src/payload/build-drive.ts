/**
 * Settings to a checked image: the one path `configdrive build`, `Payload.build` and
 * `VM.start` share. Passwords are hashed off the event loop, the translator runs, the
 * writer packs, and the image is read back with our own reader before anyone sees it.
 */
import { createHash } from 'node:crypto';
import { buildDriveTree, DEFAULT_DRIVE_FORMAT, DRIVE_LABELS, labelProblem, META_DATA_PATH, NOCLOUD_PATHS, prehashPasswords, type DriveFormat } from '../cloudinit/index.js';
import type { DomainFacts, DriveTree } from '../cloudinit/types.js';
import { AgentError } from '../errors.js';
import type { Initialization } from '../initialization/types.js';
import { readIsoImage, type IsoImage, type IsoWriter } from '../iso/index.js';
import { buildInstance, type Instance, type InstanceHistory } from './instance-lineage.js';

export const DEFAULT_LABEL = DRIVE_LABELS.configdrive;

export interface DriveImage {
  readonly bytes: Uint8Array;
  /** sha256 of the image bytes, hex. */
  readonly sha256: string;
  /** sha256 over the drive's paths and contents: equal for equal drives whatever the timestamps. */
  readonly contentDigest: string;
  readonly instance: Instance;
  readonly label: string;
  readonly tree: DriveTree;
  /** The VM.initialized nonce on the drive (src/cloudinit/init-reporter.ts), if it reports. */
  readonly nonce?: string;
  readonly warnings: readonly string[];
}

/** What the agent knows of the domain's instances, and what the caller asks of this one. */
export interface LineageOptions {
  readonly history?: InstanceHistory;
  readonly reinitialize?: boolean;
}

export interface BuildOptions {
  readonly writer: IsoWriter;
  /** The layout (default config-2); its label when `label` is absent. */
  readonly format?: DriveFormat;
  readonly label?: string;
  readonly timestamp?: Date;
  /** Hash passwords on this thread (a build thread) rather than on libuv's pool. */
  readonly blockingHash?: boolean;
}

/** A Buffer over the same memory: Buffer.from(Uint8Array) would copy it. */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Paths sorted, each with its length, so no two different trees share a digest input. */
export function treeDigest(tree: DriveTree): string {
  const hash = createHash('sha256');
  for (const path of [...tree.keys()].sort()) {
    const bytes = tree.get(path)!;
    hash.update(`${path}\0${String(bytes.length)}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/**
 * The domain's next drive: its instance chosen by the lineage (instance-lineage.ts),
 * which may translate twice (once with the last instance's identity, to see whether the
 * settings changed); only the chosen tree is packed.
 */
export async function buildDriveImage(init: Initialization, facts: DomainFacts, options: BuildOptions, lineage: LineageOptions = {}): Promise<DriveImage> {
  const format = options.format ?? DEFAULT_DRIVE_FORMAT;
  const label = options.label ?? DRIVE_LABELS[format];
  const problem = labelProblem(format, label);
  if (problem !== undefined) throw new AgentError('INVALID_LABEL', problem);
  const { image: drive, instance, warnings } = await buildInstance(
    { uuid: facts.uuid, ...lineage, ...(init.instanceId === undefined ? {} : { requestedId: init.instanceId }) },
    async (identity) => {
      const hashed = await prehashPasswords(init, identity.instanceId, { blocking: options.blockingHash === true });
      const built = buildDriveTree(hashed, facts, identity, format);
      return { ...built, contentDigest: treeDigest(built.tree) };
    },
  );
  const bytes = await options.writer.write(
    { files: drive.tree },
    options.timestamp === undefined ? { volumeId: label } : { volumeId: label, timestamp: options.timestamp },
  );
  verifyImage(readIsoImage(bytes), drive.tree, label, `image from the ${options.writer.name} writer`);
  return {
    bytes,
    sha256: sha256Hex(bytes),
    contentDigest: drive.contentDigest,
    instance,
    label,
    tree: drive.tree,
    ...(drive.nonce === undefined ? {} : { nonce: drive.nonce }),
    warnings: [...drive.warnings, ...warnings],
  };
}

/**
 * A drive made elsewhere (a raw VDSM payload, a pre-built image) carries its own
 * instance-id in its meta_data.json; the lineage only counts it.
 */
export async function foreignImage(
  parts: Omit<DriveImage, 'instance' | 'sha256' | 'contentDigest'>,
  instanceId: string,
  uuid: string,
  lineage: LineageOptions,
): Promise<DriveImage> {
  const contentDigest = treeDigest(parts.tree);
  const { instance, warnings } = await buildInstance({ uuid, ...lineage, requestedId: instanceId }, () => Promise.resolve({ contentDigest }));
  return { ...parts, sha256: sha256Hex(parts.bytes), contentDigest, instance, warnings: [...parts.warnings, ...warnings] };
}

/** The instance-id a drive's own meta_data.json names (`uuid`), if it names one. */
export function treeInstanceId(tree: DriveTree): string | undefined {
  const meta = tree.get(META_DATA_PATH);
  if (meta === undefined) return undefined;
  try {
    const uuid = (JSON.parse(Buffer.from(meta).toString('utf8')) as { uuid?: unknown }).uuid;
    return typeof uuid === 'string' && uuid !== '' ? uuid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A VDSM-style raw payload packed as given, no translation. Its instance is the one its
 * own meta_data.json names; without one, the domain UUID stands for it in the record.
 */
export async function packRawDrive(tree: DriveTree, uuid: string, options: BuildOptions, lineage: LineageOptions = {}): Promise<DriveImage> {
  const label = options.label ?? DEFAULT_LABEL;
  const bytes = await options.writer.write({ files: tree }, { volumeId: label });
  verifyImage(readIsoImage(bytes), tree, label, `image from the ${options.writer.name} writer`);
  return foreignImage({ bytes, label, tree, warnings: rawLabelWarnings(tree, label) }, treeInstanceId(tree) ?? uuid, uuid, lineage);
}

/** A raw payload cloud-init will not read, said by name (the files still reach the guest). */
function rawLabelWarnings(tree: DriveTree, label: string): string[] {
  if (label === DEFAULT_LABEL) return [];
  if (label.toLowerCase() === DRIVE_LABELS.nocloud && tree.has(NOCLOUD_PATHS.metaData)) return [];
  return [
    `volume label ${JSON.stringify(label)}: cloud-init reads a volume labelled ${DEFAULT_LABEL} (ConfigDrive, openstack/latest/...) or ${DRIVE_LABELS.nocloud} ` +
      '(NoCloud, meta-data and user-data at the root); the guest gets these files, its cloud-init does not read them',
  ];
}

/**
 * What the guest will read equals what we built: the label ds-identify looks for, and
 * exactly our files, byte for byte, nothing more. `what` names the image in the error.
 */
export function verifyImage(image: IsoImage, expected: DriveTree, label: string, what: string): void {
  const differences: string[] = [];
  if (image.volumeId !== label) differences.push(`label is "${image.volumeId}", not "${label}"`);
  for (const [path, bytes] of expected) {
    const found = image.files.get(path);
    if (found === undefined) differences.push(`${path} is missing`);
    else if (Buffer.compare(view(found), view(bytes)) !== 0) differences.push(`${path} differs`);
  }
  for (const path of image.files.keys()) {
    if (!expected.has(path)) differences.push(`${path} is not ours`);
  }
  if (differences.length > 0) {
    throw new AgentError('ISO_VERIFY_FAILED', `${what} does not read back as built: ${differences.join('; ')}`);
  }
}

/**
 * A migration ticket: what the source agent hands the destination agent (through the
 * engine, or `configdrive migrate`) so that the domain's drive arrives byte for byte:
 * the image itself, the record's facts about it (instance, generation, the VM.initialized
 * nonce it carries), the domain's instance lineage and its last VM.initialized state.
 *
 * Why the image travels rather than its settings: the agent never keeps a request's
 * settings (they hold passwords), and a rebuild on another host could only be equal by
 * luck of equal writer, timestamp and key. The image is what the guest reads; its bytes
 * are checked against the sha256 the source recorded, and its files against the digest
 * and instance-id, so a ticket damaged or forged on the way is refused before anything
 * is written. The ticket holds what the drive holds (hashed passwords at most) and the
 * nonce: it goes over the agents' sockets only, never into a domain's XML.
 *
 * At the destination a ticket is hostile input like any request: every problem is named
 * at its field, `params.ticket....`.
 */
import { META_DATA_PATH, NOCLOUD_PATHS, VENDOR_DATA_PATH } from '../cloudinit/index.js';
import type { DriveTree } from '../cloudinit/types.js';
import { AgentError, invalid, type Problem } from '../errors.js';
import { readIsoImage } from '../iso/index.js';
import { sha256Hex, treeDigest, treeInstanceId } from './build-drive.js';
import type { InstanceHistory } from './instance-lineage.js';
import { decodeBase64 } from './raw-payload.js';
import type { AttachedPayload, DomainRecord, InitializationState } from './store.js';

export const TICKET_VERSION = 1;

/** The ticket as it travels (JSON). */
export interface DriveTicket {
  readonly v: typeof TICKET_VERSION;
  readonly domain: { readonly uuid: string; readonly name: string };
  /** The drive the domain has now, or null (none: only its lineage moves). */
  readonly drive: (Omit<AttachedPayload, 'path'> & { readonly image: string }) | null;
  readonly lineage: InstanceHistory | null;
  readonly initialization: InitializationState | null;
  /** Where the source has the image and the channel socket: the destination's XML names its own. */
  readonly paths: { readonly image: string | null; readonly channel: string };
}

/** A ticket checked: the image's bytes decoded, everything else as sent. */
export interface OpenedTicket {
  readonly domain: { readonly uuid: string; readonly name: string };
  readonly drive: { readonly bytes: Uint8Array; readonly tree: DriveTree; readonly payload: Omit<AttachedPayload, 'path'> } | null;
  readonly lineage: InstanceHistory | null;
  readonly initialization: InitializationState | null;
  readonly paths: DriveTicket['paths'];
}

/** The ticket for a domain's record (and its image's bytes, when it has a drive). */
export function ticketOf(record: DomainRecord, image: Uint8Array | undefined, channelPath: string): DriveTicket {
  const current = record.current;
  if (current !== undefined && image === undefined) throw new AgentError('INTERNAL', `the ticket of ${record.uuid} needs its image`);
  let drive: DriveTicket['drive'] = null;
  if (current !== undefined) {
    const { path: _local, ...payload } = current;
    drive = { ...payload, image: Buffer.from(image!).toString('base64') };
  }
  return {
    v: TICKET_VERSION,
    domain: { uuid: record.uuid, name: record.name },
    drive,
    lineage: record.lineage ?? null,
    initialization: record.initialization ?? null,
    paths: { image: current?.path ?? null, channel: channelPath },
  };
}

const AT = 'params.ticket';

/**
 * Checks what the schema cannot: the image is the one the source recorded (size, sha256,
 * label, file digest, instance-id) and carries the nonce it claims. Throws
 * INVALID_PARAMS naming every problem.
 */
export function openTicket(ticket: DriveTicket): OpenedTicket {
  const problems: Problem[] = [];
  const say = (path: string, message: string) => problems.push({ path: `${AT}.${path}`, message });
  let drive: OpenedTicket['drive'] = null;
  if (ticket.drive !== null) {
    const { image, ...payload } = ticket.drive;
    const bytes = decodeBase64(image);
    if (bytes === undefined) say('drive.image', 'is not valid base64');
    else if (bytes.length !== payload.size) say('drive.image', `is ${String(bytes.length)} bytes, not the ${String(payload.size)} of drive.size`);
    else if (sha256Hex(bytes) !== payload.sha256) say('drive.image', 'does not have the sha256 of drive.sha256: damaged on the way');
    else {
      let tree: DriveTree | undefined;
      try {
        const iso = readIsoImage(bytes);
        if (iso.volumeId !== payload.label) say('drive.label', `is ${JSON.stringify(payload.label)}, the image's label is ${JSON.stringify(iso.volumeId)}`);
        tree = iso.files;
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        say('drive.image', `is not a readable ISO9660 volume: ${err.message}`);
      }
      if (tree !== undefined) {
        if (treeDigest(tree) !== payload.contentDigest) say('drive.contentDigest', "is not the digest of the image's files");
        const named = treeInstanceId(tree);
        if (tree.has(META_DATA_PATH) && named !== payload.instanceId) say('drive.instanceId', `is ${JSON.stringify(payload.instanceId)}, the image's meta_data.json names ${JSON.stringify(named ?? null)}`);
        if (payload.nonce !== undefined && !carriesNonce(tree, payload.nonce)) say('drive.nonce', "is not the nonce the image's vendor data carries");
        drive = { bytes, tree, payload };
      }
    }
  }
  const lineage = ticket.lineage;
  if (lineage !== null && ticket.drive !== null && lineage.instanceId === ticket.drive.instanceId && lineage.generation !== ticket.drive.generation) {
    say('lineage.generation', `is ${String(lineage.generation)}, the drive of the same instance is generation ${String(ticket.drive.generation)}`);
  }
  if (problems.length > 0) throw invalid('INVALID_PARAMS', `the migration ticket of ${ticket.domain.name} cannot be taken`, problems);
  return { domain: ticket.domain, drive, lineage: ticket.lineage, initialization: ticket.initialization, paths: ticket.paths };
}

function carriesNonce(tree: DriveTree, nonce: string): boolean {
  const vendor = tree.get(VENDOR_DATA_PATH) ?? tree.get(NOCLOUD_PATHS.vendorData);
  return vendor !== undefined && Buffer.from(vendor).includes(nonce);
}

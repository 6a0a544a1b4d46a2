/**
 * The agent's mark on a domain: one element in the domain's <metadata>, under the
 * agent's own namespace, naming the CD-ROM it owns and the image in it. It holds no file
 * contents and no secrets, because `virsh dumpxml` shows it to anyone who may read the
 * domain (VDSM's payload base64 in the domain XML is what we avoid).
 */
import { AgentError } from '../errors.js';
import type { PendingImage } from '../payload/store.js';
import { escapeXmlAttribute, parseXmlDocument, type CdromBus } from './domain-xml.js';

export const METADATA_URI = 'https://configdrive-agent.dev/xmlns/drive/1';
/** The namespace prefix libvirt writes the element with. */
export const METADATA_KEY = 'configdrive';

export interface DriveRecord {
  /** Target dev of the agent's CD-ROM, e.g. `sdb`. */
  readonly target: string;
  readonly bus: CdromBus;
  /** The image in it; absent while the tray is empty. */
  readonly path?: string;
  readonly sha256?: string;
  readonly contentDigest?: string;
  readonly instanceId?: string;
  /** The instance's generation (src/payload/instance-lineage.ts), decimal. */
  readonly generation?: string;
  /** ISO 8601, when the image was attached. */
  readonly attachedAt?: string;
}

const FIELDS = [
  ['target', 'target'],
  ['bus', 'bus'],
  ['path', 'path'],
  ['sha256', 'sha256'],
  ['contentDigest', 'content-digest'],
  ['instanceId', 'instance-id'],
  ['generation', 'generation'],
  ['attachedAt', 'attached-at'],
] as const;

export function recordXml(record: DriveRecord): string {
  const attributes = FIELDS.flatMap(([key, name]) => {
    const value = record[key];
    return value === undefined ? [] : [`${name}="${escapeXmlAttribute(value)}"`];
  });
  return `<drive ${attributes.join(' ')}/>`;
}

function isBus(value: string | undefined): value is CdromBus {
  return value === 'ide' || value === 'sata' || value === 'scsi';
}

/** The record from libvirt's metadata XML; a record that does not parse is reported, never guessed at. */
export function parseRecord(xml: string): DriveRecord {
  const root = parseXmlDocument(xml, 'configdrive metadata');
  const drive = root['drive'] as { $?: Record<string, string> } | undefined;
  const attrs = drive?.$ ?? {};
  const target = attrs['target'];
  const bus = attrs['bus'];
  if (target === undefined || !/^(hd|sd)[a-z]{1,2}$/.test(target) || !isBus(bus)) {
    throw new AgentError('DOMAIN_STATE', `the domain's configdrive metadata is damaged (target "${String(target)}", bus "${String(bus)}"); remove it with virsh metadata --remove`);
  }
  const record: Record<string, string> = { target, bus };
  for (const [key, name] of FIELDS) {
    const value = attrs[name];
    if (value !== undefined && key !== 'target' && key !== 'bus') record[key] = value;
  }
  return record as unknown as DriveRecord;
}

/** What the domain's metadata says of an image the agent puts in (never contents or secrets). */
export function markOf(image: PendingImage): Omit<DriveRecord, 'target' | 'bus'> {
  const { path, sha256, contentDigest, instanceId, generation, attachedAt } = image;
  return { path, sha256, contentDigest, instanceId, ...(generation === undefined ? {} : { generation: String(generation) }), attachedAt };
}

/**
 * What the agent needs to know from a libvirt domain XML, and the device XML it hands
 * back. Pure: strings in, values out. The agent never rewrites a whole domain XML (that
 * would risk dropping what it does not understand); it reads it, and changes devices
 * one at a time through libvirt's device calls.
 */
import { Parser } from 'xml2js';
import { AgentError } from '../errors.js';

export type CdromBus = 'ide' | 'sata' | 'scsi';

export interface DiskInfo {
  readonly device: string;
  readonly bus: string;
  readonly target: string;
  /** The file (or volume/device) behind it; absent for an empty tray. */
  readonly source?: string;
  readonly bootOrder?: number;
}

export interface DomainDescription {
  readonly uuid: string;
  /** libvirt's id of the running domain (live XML only): a new QEMU gets a new one. */
  readonly id?: number;
  readonly name: string;
  /** Machine type as in <os><type machine=...>, e.g. `pc-q35-7.2`. */
  readonly machine: string;
  /** MACs of the interfaces in document order, lower case: the guest's NICs in PCI order. */
  readonly macs: readonly string[];
  readonly disks: readonly DiskInfo[];
  readonly controllers: readonly { readonly type: string; readonly model?: string }[];
  /** Virtio-serial channels: the port name the guest sees and the unix socket behind it. */
  readonly channels: readonly { readonly name: string; readonly type: string; readonly path?: string }[];
}

/** An element as xml2js gives it (explicitArray): attributes in `$`, text in `_` beside them. */
export type Node = { $?: Record<string, string>; [child: string]: unknown };

export function children(node: Node | undefined, name: string): Node[] {
  const value = node?.[name];
  return Array.isArray(value) ? (value as Node[]).filter((v) => typeof v === 'object' && v !== null) : [];
}

export function first(node: Node | undefined, name: string): Node | undefined {
  return children(node, name)[0];
}

export function text(node: Node | undefined, name: string): string | undefined {
  const value = node?.[name];
  if (!Array.isArray(value)) return undefined;
  const v: unknown = value[0];
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { _?: unknown })._ === 'string') return (v as { _: string })._;
  return undefined;
}

export function attr(node: Node | undefined, name: string): string | undefined {
  return node?.$?.[name];
}

/** Domain XML comes from libvirt, which never emits a DOCTYPE; anything else is refused. */
export function parseXmlDocument(xml: string, what: string): Node {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new AgentError('INTERNAL', `${what} contains a DOCTYPE or entity declaration`);
  let root: Node | undefined;
  let failure: unknown;
  // xml2js calls back synchronously when async is false.
  new Parser({ explicitArray: true, explicitRoot: true, async: false, strict: true }).parseString(xml, (err: unknown, result: unknown) => {
    failure = err;
    root = result as Node | undefined;
  });
  if (failure !== null && failure !== undefined) {
    throw new AgentError('INTERNAL', `${what} is not well-formed XML: ${failure instanceof Error ? failure.message.split('\n')[0] : String(failure)}`);
  }
  if (root === undefined) throw new AgentError('INTERNAL', `${what} is empty`);
  return root;
}

function diskSource(disk: Node): string | undefined {
  const source = first(disk, 'source');
  return attr(source, 'file') ?? attr(source, 'dev') ?? attr(source, 'volume') ?? attr(source, 'name');
}

export function describeDomain(xml: string): DomainDescription {
  // With explicitRoot the document element is the one child that is not an array.
  const domain = parseXmlDocument(xml, 'domain XML')['domain'] as Node | undefined;
  const uuid = text(domain, 'uuid');
  const name = text(domain, 'name');
  if (domain === undefined || uuid === undefined || name === undefined) throw new AgentError('INTERNAL', 'domain XML has no <domain> with <name> and <uuid>');
  const devices = first(domain, 'devices');
  const disks = children(devices, 'disk').map((disk): DiskInfo => {
    const target = first(disk, 'target');
    const source = diskSource(disk);
    const order = attr(first(disk, 'boot'), 'order');
    return {
      device: attr(disk, 'device') ?? 'disk',
      bus: attr(target, 'bus') ?? '',
      target: attr(target, 'dev') ?? '',
      ...(source === undefined ? {} : { source }),
      ...(order === undefined ? {} : { bootOrder: Number(order) }),
    };
  });
  const macs = children(devices, 'interface')
    .map((i) => attr(first(i, 'mac'), 'address')?.toLowerCase())
    .filter((m): m is string => m !== undefined);
  const controllers = children(devices, 'controller').map((c) => {
    const model = attr(c, 'model');
    return { type: attr(c, 'type') ?? '', ...(model === undefined ? {} : { model }) };
  });
  const channels = children(devices, 'channel')
    .filter((c) => attr(first(c, 'target'), 'type') === 'virtio')
    .map((c) => {
      const path = attr(first(c, 'source'), 'path');
      return { name: attr(first(c, 'target'), 'name') ?? '', type: attr(c, 'type') ?? '', ...(path === undefined ? {} : { path }) };
    });
  const machine = attr(first(first(domain, 'os'), 'type'), 'machine') ?? '';
  const id = attr(domain, 'id');
  return { uuid: uuid.trim().toLowerCase(), ...(id === undefined ? {} : { id: Number(id) }), name: name.trim(), machine, macs, disks, controllers, channels };
}

/** The CD-ROM bus this domain can take: SCSI where virtio-scsi exists (it hot-plugs), else the chipset's own. */
export function cdromBus(desc: DomainDescription): CdromBus {
  if (desc.controllers.some((c) => c.type === 'scsi' && c.model === 'virtio-scsi')) return 'scsi';
  return /q35/.test(desc.machine) ? 'sata' : 'ide';
}

/** IDE has four slots (hda..hdd); SATA and SCSI names go on, as libvirt's do. */
export function freeTarget(desc: DomainDescription, bus: CdromBus): string {
  const prefix = bus === 'ide' ? 'hd' : 'sd';
  const limit = bus === 'ide' ? 4 : 26;
  const used = new Set(desc.disks.map((d) => d.target));
  for (let i = 0; i < limit; i++) {
    const target = prefix + String.fromCharCode(97 + i);
    if (!used.has(target)) return target;
  }
  throw new AgentError('DOMAIN_STATE', `domain ${desc.name} has no free ${bus} slot for a CD-ROM (all of ${prefix}a..${prefix}${String.fromCharCode(96 + limit)} are taken)`);
}

export function escapeXmlAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * A read-only raw CD-ROM, with or without media. No <boot order>: the drive is data, it
 * must not change which device the guest boots from. DAC relabelling is off for our
 * image: the store already gives it to QEMU's group, read-only (0640 root:group), and
 * with dynamic_ownership libvirt would chown it to QEMU's user, which could then write
 * it, and never give it back (libvirt does not restore labels of read-only disks).
 * Other security drivers (AppArmor, SELinux) still label it per guest.
 */
export function cdromDeviceXml(target: string, bus: CdromBus, source?: string): string {
  return [
    "<disk type='file' device='cdrom'>",
    "<driver name='qemu' type='raw'/>",
    source === undefined ? '' : `<source file="${escapeXmlAttribute(source)}"><seclabel model='dac' relabel='no'/></source>`,
    `<target dev="${escapeXmlAttribute(target)}" bus="${bus}"/>`,
    '<readonly/>',
    '</disk>',
  ].join('');
}

export function findDisk(desc: DomainDescription, target: string): DiskInfo | undefined {
  return desc.disks.find((d) => d.target === target);
}

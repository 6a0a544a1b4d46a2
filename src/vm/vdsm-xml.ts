/**
 * The domain XML of VDSM's `VM.create` as oVirt engine writes it (LibvirtVmXmlBuilder):
 * a CD-ROM whose source is `PAYLOAD:` (VDSM's own tests also leave the source without a
 * file), and under <metadata>, in namespace http://ovirt.org/vm/1.0, the files for it:
 *
 *   <ovirt-vm:vm>
 *     <ovirt-vm:launchPaused>false</ovirt-vm:launchPaused>
 *     <ovirt-vm:device devtype="disk" name="sdc"><ovirt-vm:payload>
 *       <ovirt-vm:volId>config-2</ovirt-vm:volId>
 *       <ovirt-vm:file path="openstack/latest/meta_data.json">BASE64</ovirt-vm:file>
 *
 * Pure: the request's string in, what VM.create needs out, every problem named by an
 * XPath-like location in the `domainXml` param (`file[0]` counts from 0, as the agent's
 * other paths do). The XML itself is later defined as sent: this module only reads it.
 */
import { invalid, type Problem } from '../errors.js';
import type { DriveTree } from '../cloudinit/types.js';
import { decodeBase64, rawPayloadProblems } from '../payload/raw-payload.js';
import { attr, children, describeDomain, first, parseXmlDocument, text, type CdromBus, type Node } from './domain-xml.js';

export const OVIRT_VM_URI = 'http://ovirt.org/vm/1.0';
/** The PAYLOAD: placeholder VDSM replaces with the path of the image it builds. */
export const PAYLOAD_SOURCE = 'PAYLOAD:';

export interface VdsmPayload {
  /** Target dev of the payload CD-ROM, which is also its ovirt-vm:device name. */
  readonly target: string;
  readonly bus: CdromBus;
  readonly tree: DriveTree;
  /** ovirt-vm:volId, the volume label; the daemon's label when absent. */
  readonly label?: string;
}

export interface VdsmCreate {
  /** The domain XML as sent: defined as it is, then the payload CD-ROM filled (src/vm/create.ts). */
  readonly xml: string;
  readonly uuid: string;
  readonly name: string;
  readonly payload: VdsmPayload;
  readonly launchPaused: boolean;
}

const at = (xpath: string) => `domainXml: ${xpath}`;

/** Elements of the ovirt-vm namespace under <metadata>, whatever prefix the document gave it. */
function ovirtPrefix(domain: Node, metadata: Node | undefined): string | undefined {
  for (const node of [domain, metadata]) {
    for (const [name, value] of Object.entries(node?.$ ?? {})) if (name.startsWith('xmlns:') && value === OVIRT_VM_URI) return name.slice('xmlns:'.length);
  }
  // The prefix can also be declared on the element itself.
  for (const key of Object.keys(metadata ?? {})) {
    const prefix = key.split(':')[0];
    if (key.endsWith(':vm') && children(metadata, key).some((n) => attr(n, `xmlns:${String(prefix)}`) === OVIRT_VM_URI)) return prefix;
  }
  return undefined;
}

/** Every child element by name; xml2js gives one without attributes as its bare text. */
function elements(node: Node, name: string): Node[] {
  const value = node[name];
  return Array.isArray(value) ? value.map((v: unknown) => (typeof v === 'string' ? ({ _: v } as Node) : (v as Node))) : [];
}

function elementText(node: Node): string {
  const t = (node as { _?: unknown })._;
  return typeof t === 'string' ? t : '';
}

/** The VM.create request, or AgentError INVALID_PARAMS listing every problem. */
export function parseVdsmCreate(xml: string): VdsmCreate {
  const problems: Problem[] = [];
  const fail = (): never => {
    throw invalid('INVALID_PARAMS', 'VM.create has a domain XML it cannot create', problems);
  };
  let root: Node;
  try {
    root = parseXmlDocument(xml, 'domainXml');
  } catch (err) {
    // A DOCTYPE or entity is refused before parsing: nothing is expanded or fetched.
    problems.push({ path: at('/'), message: err instanceof Error ? err.message.replace(/^domainXml /, '') : String(err) });
    return fail();
  }
  const domain = root['domain'] as Node | undefined;
  if (domain === undefined) {
    problems.push({ path: at('/'), message: 'has no <domain> document element' });
    return fail();
  }
  const uuid = text(domain, 'uuid')?.trim().toLowerCase();
  const name = text(domain, 'name')?.trim();
  // The record is journaled under the UUID before libvirt sees the XML: it must be given.
  if (uuid === undefined || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) problems.push({ path: at('/domain/uuid'), message: 'must be the domain UUID (VDSM always sends one)' });
  if (name === undefined || name === '') problems.push({ path: at('/domain/name'), message: 'is required' });
  if (problems.length > 0) return fail();

  const metadata = first(domain, 'metadata');
  const prefix = ovirtPrefix(domain, metadata);
  const vm = prefix === undefined ? undefined : first(metadata, `${prefix}:vm`);
  const el = (local: string) => `${String(prefix)}:${local}`;

  let launchPaused = false;
  const paused = vm === undefined ? undefined : text(vm, el('launchPaused'))?.trim();
  if (paused !== undefined) {
    if (paused !== 'true' && paused !== 'false') problems.push({ path: at('/domain/metadata/vm/launchPaused'), message: 'must be true or false' });
    launchPaused = paused === 'true';
  }

  // A payload CD-ROM is one whose source is PAYLOAD:, or one the metadata gives a payload.
  const described = describeDomain(xml);
  const withPayload = new Map<string, Node>();
  for (const device of children(vm, el('device'))) {
    const payload = first(device, el('payload'));
    const devName = attr(device, 'name');
    if (payload !== undefined && devName !== undefined) withPayload.set(devName, payload);
  }
  const targets = new Set([...described.disks.filter((d) => d.device === 'cdrom' && d.source === PAYLOAD_SOURCE).map((d) => d.target), ...withPayload.keys()]);
  if (targets.size === 0) {
    problems.push({ path: at('/domain/devices'), message: `has no CD-ROM whose source is ${PAYLOAD_SOURCE} with an ovirt-vm:payload for it; VM.create only creates domains with a payload` });
    return fail();
  }
  if (targets.size > 1) {
    problems.push({ path: at('/domain/devices'), message: `has payload devices ${[...targets].join(', ')}; VM.create fills one` });
    return fail();
  }
  const target = [...targets][0]!;
  const dev = `/domain/metadata/vm/device[@name='${target}']`;
  const disk = described.disks.find((d) => d.target === target);
  const payload = withPayload.get(target);
  if (disk === undefined || disk.device !== 'cdrom') problems.push({ path: at(dev), message: `names ${target}, which is not a CD-ROM of the domain (a floppy payload is not supported)` });
  else if (disk.source !== undefined && disk.source !== PAYLOAD_SOURCE) problems.push({ path: at(`/domain/devices/disk[target/@dev='${target}']/source/@file`), message: `is "${disk.source}"; a payload CD-ROM's source must be ${PAYLOAD_SOURCE} or none` });
  else if (disk.bus !== 'ide' && disk.bus !== 'sata' && disk.bus !== 'scsi') problems.push({ path: at(`/domain/devices/disk[target/@dev='${target}']/target/@bus`), message: `is "${disk.bus}"; a payload CD-ROM must be on ide, sata or scsi` });
  // Fail closed: startupPolicy="optional" would let libvirt start the guest without it.
  if (payload === undefined) problems.push({ path: at(dev), message: `is missing: the ${PAYLOAD_SOURCE} CD-ROM ${target} needs an ovirt-vm:payload to fill it` });
  if (problems.length > 0 || payload === undefined || disk === undefined) return fail();

  const volId = elements(payload, el('volId')).map((v) => elementText(v).trim())[0];
  const files = new Map<string, Uint8Array>();
  const index = new Map<string, number>();
  for (const [i, file] of elements(payload, el('file')).entries()) {
    const path = attr(file, 'path');
    const where = `${dev}/payload/file[${String(i)}]`;
    if (path === undefined) {
      problems.push({ path: at(`${where}/@path`), message: 'is required' });
      continue;
    }
    if (index.has(path)) {
      problems.push({ path: at(`${where}/@path`), message: `"${path}" is given twice` });
      continue;
    }
    index.set(path, i);
    // The engine writes base64 on one line; line breaks a hand-written file adds are not content.
    const bytes = decodeBase64(elementText(file).replace(/\s+/g, ''));
    if (bytes === undefined) problems.push({ path: at(where), message: 'is not valid base64' });
    else files.set(path, bytes);
  }
  problems.push(
    ...rawPayloadProblems(files, volId, {
      volId: at(`${dev}/payload/volId`),
      file: (path) => at(path === undefined || !index.has(path) ? `${dev}/payload` : `${dev}/payload/file[${String(index.get(path))}]/@path`),
    }),
  );
  if (problems.length > 0) return fail();
  return { xml, uuid: uuid!, name: name!, payload: { target, bus: disk.bus as CdromBus, tree: files, ...(volId === undefined ? {} : { label: volId }) }, launchPaused };
}

/**
 * The agent's virtio-serial channel, over which the guest reports VM.initialized: a
 * `<channel type='unix'>` whose socket is the daemon's (STATE/channels/<uuid>.sock) and
 * whose target name is REPORT_PORT. libvirt binds the socket itself and passes QEMU the
 * descriptor, so QEMU needs no access to the directory; the path is fixed in the
 * definition, so the daemon finds it without asking libvirt, on whatever host kind.
 * It goes into the definition with the drive, before the guest runs: a channel cannot
 * appear in a running guest that booted without it.
 */
import { REPORT_PORT } from '../cloudinit/init-reporter.js';
import { describeDomain, escapeXmlAttribute } from './domain-xml.js';
import type { DomainControl, DomainRef } from './ports.js';

export function channelXml(path: string): string {
  return `<channel type='unix'><source mode='bind' path="${escapeXmlAttribute(path)}"/><target type='virtio' name='${REPORT_PORT}'/></channel>`;
}

/** The channel as the definition has it, by its port name. */
export async function definedChannel(hv: DomainControl, dom: DomainRef): Promise<{ path?: string } | undefined> {
  return describeDomain(await hv.getXml(dom, { inactive: true })).channels.find((c) => c.name === REPORT_PORT);
}

/**
 * Puts our channel in the definition unless it is there with `path`; returns what undo
 * needs: the XML of the channel added, or undefined when nothing changed. A channel of
 * our name with another path (a state directory moved) is replaced.
 */
export async function ensureChannel(hv: DomainControl, dom: DomainRef, path: string): Promise<{ added: string; replaced?: string } | undefined> {
  const existing = await definedChannel(hv, dom);
  if (existing?.path === path) return undefined;
  let replaced: string | undefined;
  if (existing !== undefined) {
    replaced = channelXml(existing.path ?? '');
    await hv.detachDevice(dom, `<channel type='unix'><target type='virtio' name='${REPORT_PORT}'/></channel>`, { config: true });
  }
  await hv.attachDevice(dom, channelXml(path), { config: true });
  return { added: channelXml(path), ...(replaced === undefined ? {} : { replaced }) };
}

export async function undoChannel(hv: DomainControl, dom: DomainRef, change: { added: string; replaced?: string }): Promise<void> {
  await hv.detachDevice(dom, change.added, { config: true });
  if (change.replaced !== undefined) await hv.attachDevice(dom, change.replaced, { config: true });
}

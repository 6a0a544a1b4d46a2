/**
 * Who QEMU runs as, from libvirt's host capabilities. libvirt's DAC security driver
 * publishes the uid and gid it gives each QEMU process (`<secmodel><model>dac</model>
 * <baselabel type='kvm'>+64055:+64055</baselabel>`): that, not a guess from the
 * distribution's user names, is what the agent's images must be readable by. Pure.
 */
import { AgentError } from '../errors.js';
import { parseXmlDocument } from './domain-xml.js';

export interface QemuIdentity {
  readonly uid: number;
  readonly gid: number;
}

type Node = { $?: Record<string, string>; _?: string; [child: string]: unknown };

function list(node: unknown, name: string): Node[] {
  const value = (node as Node | undefined)?.[name];
  return Array.isArray(value) ? (value as Node[]) : [];
}

function textOf(node: unknown): string {
  return typeof node === 'string' ? node : ((node as Node | undefined)?._ ?? '');
}

/**
 * The DAC label for domains of `domainType` (`kvm` or `qemu`), or undefined when libvirt
 * runs without its DAC driver (then QEMU keeps libvirt's own identity).
 */
export function qemuIdentity(capabilitiesXml: string, domainType: 'kvm' | 'qemu'): QemuIdentity | undefined {
  const host = list(parseXmlDocument(capabilitiesXml, 'libvirt capabilities')['capabilities'], 'host')[0];
  for (const secmodel of list(host, 'secmodel')) {
    if (textOf(list(secmodel, 'model')[0]).trim() !== 'dac') continue;
    const label = list(secmodel, 'baselabel').find((l) => l.$?.['type'] === domainType);
    if (label === undefined) return undefined;
    const m = /^\+?(\d+):\+?(\d+)$/.exec(textOf(label).trim());
    if (m === null) throw new AgentError('INTERNAL', `libvirt's DAC label "${textOf(label)}" is not uid:gid`);
    return { uid: Number(m[1]), gid: Number(m[2]) };
  }
  return undefined;
}

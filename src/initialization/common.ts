/** Limits and the pieces every format shares: NIC checks, file contents, DNS lists. */
import * as checks from './checks.js';
import type { Doc } from './doc.js';
import type { InjectedFile, NicConfiguration } from './types.js';

/** Every bound on an input, in one place (documented in docs/initialization.md). */
export const INITIALIZATION_LIMITS = {
  /** The whole document, before parsing. */
  maxInputBytes: 4 * 1024 * 1024,
  /** Nesting of the parsed document; real ones are under 8 levels deep. */
  maxDepth: 32,
  /** Values in the parsed document (elements, keys, list items). */
  maxNodes: 100_000,
  maxUsers: 64,
  maxKeysPerUser: 64,
  maxNics: 32,
  maxFiles: 256,
  maxDnsEntries: 16,
  maxCommands: 256,
  maxGroups: 32,
} as const;

export const IPV4_BOOT = { none: 'none', dhcp: 'dhcp', static: 'static' } as const;
export const IPV6_BOOT = { none: 'none', dhcp: 'dhcp', autoconf: 'autoconf', 'dhcp+autoconf': 'dhcp+autoconf', poly_dhcp_autoconf: 'dhcp+autoconf', static: 'static' } as const;

/** Space- (or comma-) separated lists, as oVirt's dns_servers and dns_search are. */
export function words(text: string | undefined): string[] {
  return text === undefined ? [] : text.split(/[\s,]+/).filter((w) => w !== '');
}

export function dnsServers(doc: Doc, values: readonly string[], path: string, into: string[]): void {
  if (values.length > INITIALIZATION_LIMITS.maxDnsEntries) doc.problem(path, `lists ${String(values.length)} servers, over the limit of ${String(INITIALIZATION_LIMITS.maxDnsEntries)}`);
  for (const v of values.slice(0, INITIALIZATION_LIMITS.maxDnsEntries)) {
    const ip = doc.check(v, path, checks.ipAddress);
    if (ip !== undefined && !into.includes(ip)) into.push(ip);
  }
}

export function dnsSearch(doc: Doc, values: readonly string[], path: string, into: string[]): void {
  if (values.length > INITIALIZATION_LIMITS.maxDnsEntries) doc.problem(path, `lists ${String(values.length)} domains, over the limit of ${String(INITIALIZATION_LIMITS.maxDnsEntries)}`);
  for (const v of values.slice(0, INITIALIZATION_LIMITS.maxDnsEntries)) {
    const d = doc.check(v, path, checks.hostName);
    if (d !== undefined && !into.includes(d)) into.push(d);
  }
}

/** SSH keys given one per line (oVirt's authorized_ssh_keys) or as a list. */
export function sshKeys(doc: Doc, values: readonly string[], path: string): string[] {
  const keys: string[] = [];
  const lines = values.flatMap((v) => v.split(/\r?\n/)).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length > INITIALIZATION_LIMITS.maxKeysPerUser) doc.problem(path, `has ${String(lines.length)} keys, over the limit of ${String(INITIALIZATION_LIMITS.maxKeysPerUser)}`);
  for (const line of lines.slice(0, INITIALIZATION_LIMITS.maxKeysPerUser)) {
    const key = doc.check(line, path, checks.sshKey);
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

/** File content as given: PLAINTEXT (UTF-8) or BASE64. */
export function fileContent(doc: Doc, content: string | undefined, type: 'plaintext' | 'base64', path: string): Uint8Array | undefined {
  if (content === undefined) return doc.problem(path, 'is missing');
  if (type === 'base64') return doc.check(content, path, checks.base64);
  return new TextEncoder().encode(content);
}

export function addFile(doc: Doc, files: InjectedFile[], file: InjectedFile, path: string): void {
  if (files.some((f) => f.path === file.path)) {
    doc.problem(path, `writes ${file.path} a second time`);
    return;
  }
  files.push(file);
}

/** Names and MACs must be unique, or two settings would fight over one interface. */
export function checkNics(doc: Doc, nics: readonly NicConfiguration[], path: (i: number) => string): void {
  const names = new Map<string, number>();
  const macs = new Map<string, number>();
  nics.forEach((nic, i) => {
    const otherName = names.get(nic.name);
    if (otherName !== undefined) doc.problem(`${path(i)}.name`, `"${nic.name}" is also the name of ${path(otherName)}`);
    names.set(nic.name, i);
    if (nic.mac !== undefined) {
      const otherMac = macs.get(nic.mac);
      if (otherMac !== undefined) doc.problem(`${path(i)}.mac`, `${nic.mac} is also the MAC of ${path(otherMac)}`);
      macs.set(nic.mac, i);
    }
  });
}

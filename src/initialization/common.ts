/** Limits and the pieces every format shares: NIC checks, file contents, DNS lists. */
import type { InitializationBuilder, NicSources } from './builder.js';
import * as checks from './checks.js';
import type { Doc } from './doc.js';
import type { SourcePath } from './source-path.js';
import type { NicConfiguration } from './types.js';

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

/** DNS servers, each where it was given (one field of several, or one entry of a list). */
export function dnsServers(doc: Doc, values: readonly { text: string; path: SourcePath }[], path: SourcePath, b: InitializationBuilder): void {
  if (values.length > INITIALIZATION_LIMITS.maxDnsEntries) doc.problem(path, `lists ${String(values.length)} servers, over the limit of ${String(INITIALIZATION_LIMITS.maxDnsEntries)}`);
  for (const v of values.slice(0, INITIALIZATION_LIMITS.maxDnsEntries)) {
    const ip = doc.check(v.text, v.path, checks.ipAddress);
    if (ip !== undefined && !b.dnsServers.includes(ip)) b.dnsServers.push(ip);
  }
  if (values.length > 0) dnsSource(b, 'servers', path);
}

export function dnsSearch(doc: Doc, values: readonly { text: string; path: SourcePath }[], path: SourcePath, b: InitializationBuilder): void {
  if (values.length > INITIALIZATION_LIMITS.maxDnsEntries) doc.problem(path, `lists ${String(values.length)} domains, over the limit of ${String(INITIALIZATION_LIMITS.maxDnsEntries)}`);
  for (const v of values.slice(0, INITIALIZATION_LIMITS.maxDnsEntries)) {
    const d = doc.check(v.text, v.path, checks.hostName);
    if (d !== undefined && !b.dnsSearch.includes(d)) b.dnsSearch.push(d);
  }
  if (values.length > 0) dnsSource(b, 'search', path);
}

function dnsSource(b: InitializationBuilder, part: 'servers' | 'search', path: SourcePath): void {
  b.sources.set('dns', path);
  b.sources.set(`dns.${part}`, path);
}

/** Words of one field, all at that field's path. */
export function wordsAt(text: string | undefined, path: SourcePath): { text: string; path: SourcePath }[] {
  return words(text).map((w) => ({ text: w, path }));
}

/** SSH keys given one per line (oVirt's authorized_ssh_keys) or as a list. */
export function sshKeys(doc: Doc, values: readonly string[], path: SourcePath): string[] {
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
export function fileContent(doc: Doc, content: string | undefined, type: 'plaintext' | 'base64', path: SourcePath): Uint8Array | undefined {
  if (content === undefined) return doc.problem(path, 'is missing');
  if (type === 'base64') return doc.check(content, path, checks.base64);
  return new TextEncoder().encode(content);
}

/** A NIC as read, with where it and its parts were. */
export interface ReadNic {
  readonly nic: NicConfiguration;
  readonly from: NicSources;
}

/**
 * One list of NICs into the builder. Names and MACs must be unique, or two settings
 * would fight over one interface.
 */
export function addNics(doc: Doc, nics: readonly ReadNic[], b: InitializationBuilder): void {
  const names = new Map<string, SourcePath>();
  const macs = new Map<string, SourcePath>();
  for (const { nic, from } of nics) {
    const otherName = names.get(nic.name);
    if (otherName !== undefined) doc.problem(from.name, `"${nic.name}" is also the name of ${doc.show(otherName)}`);
    names.set(nic.name, from.nic);
    if (nic.mac !== undefined) {
      const otherMac = macs.get(nic.mac);
      if (otherMac !== undefined) doc.problem(from.mac ?? from.nic, `${nic.mac} is also the MAC of ${doc.show(otherMac)}`);
      macs.set(nic.mac, from.nic);
    }
    b.addNic(nic, from);
  }
}

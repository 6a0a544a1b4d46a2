/**
 * The three views of a domain's drive, read from outside the daemon, and what makes them
 * agree:
 *  (a) the agent's record: Payload.get and the file STATE/domains/<uuid>.json;
 *  (b) libvirt: the persistent definition (etc/qemu/NAME.xml) and the live one in the
 *      status file (run/qemu/NAME.xml), with our metadata element in each. Read as files
 *      because an embedded root admits one process, the daemon; libvirt writes both
 *      before a call returns;
 *  (c) QEMU: the image files its process has open (/proc/PID/fd), the pid from the
 *      status file.
 * Plus the store itself: every image is named by a record, and no temp file is left.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { RpcClient } from '../../src/rpc/client.js';
import { describeDomain, type DiskInfo } from '../../src/vm/domain-xml.js';
import { METADATA_URI } from '../../src/vm/record.js';

export interface LibvirtFiles {
  /** Where libvirt keeps persistent definitions: ROOT/etc/qemu (embed) or /etc/libvirt/qemu. */
  readonly configDir: string;
  /** Where it keeps status files and pid files: ROOT/run/qemu or /run/libvirt/qemu. */
  readonly runDir: string;
}

interface Payload {
  readonly path: string;
  readonly liveEmpty?: boolean;
  readonly sha256: string;
  readonly target: string;
  readonly runOnce?: boolean;
}

export interface DefinitionView {
  readonly disks: readonly DiskInfo[];
  /** Our metadata element's attributes, or null when it is not there. */
  readonly mark: Readonly<Record<string, string>> | null;
}

export interface Views {
  readonly name: string;
  readonly get: { readonly payload: Payload | null; readonly pending: boolean };
  readonly file: { readonly current?: Payload; readonly pending?: unknown } | null;
  readonly persistent: DefinitionView;
  /** Null when the domain is shut off (libvirt has no status file). */
  readonly live: (DefinitionView & { readonly state: string; readonly reason: string; readonly job: string | null; readonly pid: number }) | null;
  /** Files under the store's images/ that QEMU has open, as /proc shows them (" (deleted)" included). */
  readonly qemuHolds: readonly string[] | null;
}

/** Attributes of our metadata element in a domain XML, whatever prefix libvirt gave it. */
function markOf(xml: string): Record<string, string> | null {
  const metadata = /<metadata>([\s\S]*?)<\/metadata>/.exec(xml)?.[1] ?? '';
  const element = /<(\w+):drive\b([^>]*)\/>/.exec(metadata);
  if (element === null || !element[2]!.includes(METADATA_URI)) return null;
  const attrs: Record<string, string> = {};
  for (const m of element[2]!.matchAll(/([\w:-]+)=(['"])(.*?)\2/g)) if (!m[1]!.startsWith('xmlns')) attrs[m[1]!] = m[3]!;
  return attrs;
}

/** The disks and our mark in a domain XML, or in the <domain> inside a status file. */
export function definition(xml: string): DefinitionView {
  const domain = /<domain[\s>][\s\S]*<\/domain>/.exec(xml)?.[0];
  if (domain === undefined) throw new Error(`no <domain> in:\n${xml}`);
  return { disks: describeDomain(domain).disks, mark: markOf(domain) };
}

/** The pid's open files under `dir`; null when the process is gone or a zombie. */
export function openFilesUnder(pid: number, dir: string): string[] | null {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${String(pid)}/fd`);
  } catch {
    return null;
  }
  const state = /\) (\S)/.exec(readFileSync(`/proc/${String(pid)}/stat`, 'utf8'))?.[1];
  if (state === 'Z') return null;
  const held: string[] = [];
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${String(pid)}/fd/${fd}`);
      if (link.startsWith(dir + '/')) held.push(link);
    } catch {
      // closed between the listing and the readlink
    }
  }
  return held.sort();
}

export async function readViews(client: RpcClient, stateDir: string, lv: LibvirtFiles, name: string, uuid: string): Promise<Views> {
  const get = await client.call<{ payload: Payload | null; pending: boolean }>('Payload.get', { domain: name });
  const recordPath = join(stateDir, 'domains', `${uuid}.json`);
  const file = existsSync(recordPath) ? (JSON.parse(readFileSync(recordPath, 'utf8')) as { current?: Payload; pending?: unknown }) : null;
  const persistent = definition(readFileSync(join(lv.configDir, `${name}.xml`), 'utf8'));
  const statusPath = join(lv.runDir, `${name}.xml`);
  let live: Views['live'] = null;
  let qemuHolds: string[] | null = null;
  if (existsSync(statusPath)) {
    const status = readFileSync(statusPath, 'utf8');
    const head = /<domstatus\b([^>]*)>/.exec(status)?.[1] ?? '';
    const attr = (n: string) => new RegExp(`\\b${n}='([^']*)'`).exec(head)?.[1] ?? '';
    const job = /<job\b[^>]*\basync='([^']*)'/.exec(status)?.[1] ?? null;
    live = { ...definition(status), state: attr('state'), reason: attr('reason'), job, pid: Number(attr('pid')) };
    qemuHolds = openFilesUnder(live.pid, join(stateDir, 'images'));
  }
  return { name, get: { payload: get.payload, pending: get.pending }, file, persistent, live, qemuHolds };
}

/**
 * What disagrees in `v`, as sentences; empty when record, definitions, metadata and
 * QEMU all name the same drive (or all name none). Whether the domain runs or is paused
 * is the caller's to judge: both are states the views can agree in. `leakedNodes`
 * accepts images QEMU holds beyond the live definition's, as long as they are not
 * deleted: a crash inside libvirt's media change leaves QEMU block nodes libvirt no
 * longer knows of, which only QEMU's monitor could remove (see leakedHolds).
 */
export function disagreements(v: Views, stateDir: string, options: { readonly leakedNodes?: boolean } = {}): string[] {
  const problems: string[] = [];
  const images = join(stateDir, 'images') + '/';
  const recorded = v.get.payload;
  if (v.get.pending) problems.push('Payload.get says a change is pending');
  if (v.file?.pending !== undefined) problems.push('the record file has a pending entry');
  if ((v.file?.current?.path ?? null) !== (recorded?.path ?? null)) problems.push(`record file names ${String(v.file?.current?.path)}, Payload.get ${String(recorded?.path)}`);
  const checkDefinition = (what: string, d: DefinitionView, none = recorded === null) => {
    if (none || recorded === null) {
      if (d.mark !== null) problems.push(`${what} has our metadata (${JSON.stringify(d.mark)}) but there is no record`);
      const ours = d.disks.filter((disk) => disk.source?.startsWith(images) === true);
      if (ours.length > 0) problems.push(`${what} has a CD-ROM with our image ${ours.map((x) => x.source).join(', ')} but there is no record`);
      return;
    }
    if (d.mark?.['path'] !== recorded.path || d.mark['target'] !== recorded.target) problems.push(`${what} metadata ${JSON.stringify(d.mark)} is not the record's ${recorded.target} ${recorded.path}`);
    const disk = d.disks.find((x) => x.target === recorded.target);
    if (disk?.device !== 'cdrom' || disk.source !== recorded.path) problems.push(`${what} has ${disk === undefined ? 'no device' : `source ${String(disk.source)}`} at ${recorded.target}, the record ${recorded.path}`);
    const others = d.disks.filter((x) => x.target !== recorded.target && x.source?.startsWith(images) === true);
    if (others.length > 0) problems.push(`${what} has other devices with our images: ${others.map((x) => `${x.target}=${String(x.source)}`).join(', ')}`);
  };
  // A drive of one run only (Run Once, or a detach whose eject QEMU refused) is in the
  // running domain and never in its definition.
  const runOnce = recorded?.runOnce === true;
  checkDefinition('the persistent definition', v.persistent, runOnce);
  if (runOnce && v.live === null) problems.push('the record names a drive of one run, and the domain does not run');
  // A tray QEMU emptied by refusing a new drive (liveEmpty): libvirt's live definition is
  // known to be stale then (src/vm/media.ts insertRefused), and what counts is that QEMU
  // holds none of our images.
  const liveEmpty = recorded?.liveEmpty === true;
  if (v.live !== null && liveEmpty) {
    const held = (v.qemuHolds ?? []).filter((h) => h.startsWith(images));
    if (held.length > 0) problems.push(`the record says the running guest's tray is empty, QEMU holds ${held.join(', ')}`);
  } else if (v.live !== null) {
    if (v.live.job !== null && v.live.job !== 'none') problems.push(`libvirt's status file holds an async job "${v.live.job}"`);
    checkDefinition('the live definition', v.live);
    const wanted = v.live.disks.map((d) => d.source).filter((s): s is string => s?.startsWith(images) === true).sort();
    if (v.qemuHolds === null) problems.push(`libvirt says QEMU pid ${String(v.live.pid)} runs, /proc has no such live process`);
    else {
      const deleted = v.qemuHolds.filter((h) => h.endsWith(' (deleted)'));
      if (deleted.length > 0) problems.push(`QEMU holds deleted images: ${deleted.join(', ')}`);
      // By file, not by descriptor: a media change cut off inside libvirt can leave QEMU a
      // second block node on the same file (counted by the suites, see duplicateHolds).
      const held = [...new Set(v.qemuHolds)];
      const missing = wanted.filter((w) => !held.includes(w));
      const extra = held.filter((h) => !wanted.includes(h));
      if (missing.length > 0) problems.push(`QEMU has open ${JSON.stringify(held)}, not the live definition's ${JSON.stringify(missing)}`);
      if (extra.length > 0 && options.leakedNodes !== true) problems.push(`QEMU has open ${JSON.stringify(extra)}, which the live definition does not name`);
    }
  }
  if (recorded !== null) {
    if (!existsSync(recorded.path)) problems.push(`the recorded image ${recorded.path} is missing`);
    else if (createHash('sha256').update(readFileSync(recorded.path)).digest('hex') !== recorded.sha256) problems.push(`the recorded image ${recorded.path} does not have the recorded sha256`);
  }
  return problems;
}

/** Descriptors QEMU holds on an image beyond the first one on that file. */
export function duplicateHolds(v: Views): number {
  return v.qemuHolds === null ? 0 : v.qemuHolds.length - new Set(v.qemuHolds).size;
}

/** Images QEMU holds that the live definition does not name (block nodes libvirt lost). */
export function leakedHolds(v: Views): string[] {
  const wanted = new Set(v.live?.disks.map((d) => d.source) ?? []);
  return [...new Set(v.qemuHolds ?? [])].filter((h) => !wanted.has(h));
}

/** Files in images/ no record names (nor `held`, open in a QEMU), and temp files anywhere in the store. */
export function strayFiles(stateDir: string, recordedPaths: readonly string[], held: readonly string[] = []): string[] {
  const named = new Set([...recordedPaths, ...held]);
  const stray: string[] = [];
  for (const sub of ['images', 'domains', 'builds']) {
    for (const f of readdirSync(join(stateDir, sub))) {
      const path = join(stateDir, sub, f);
      if (f.startsWith('.configdrive-tmp-')) stray.push(path);
      else if (sub === 'images' && !named.has(path)) stray.push(path);
    }
  }
  return stray;
}

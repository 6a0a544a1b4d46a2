/**
 * The host half of VM.initialized: one connection per running domain to its channel's
 * socket (src/vm/channel.ts), each line judged by init-report.ts against the domain's
 * current drive, the outcome recorded in the domain's record and announced. A guest
 * that writes garbage, floods or holds a line open costs a bounded buffer and a few log
 * lines a minute; it never changes a record. Connections are made when the agent starts
 * a domain (before it resumes), and for every running domain with a drive at the
 * daemon's start and on each sweep, so a restarted daemon reconnects and a domain
 * started by others (virsh, autostart) is found within a sweep.
 */
import { createConnection, type Socket } from 'node:net';
import { reportNonce } from '../cloudinit/init-reporter.js';
import type { DomainRecord, InitializationState, PayloadStore } from '../payload/store.js';
import { describeDomain } from './domain-xml.js';
import { cloudInitSeconds, judgeReport, ReportLines } from './init-report.js';
import type { DomainControl, DomainRef } from './ports.js';

/**
 * State reasons (ports.ts) of a QEMU that continues a guest's earlier run rather than
 * booting it: a restore (managed save, virsh restore), an incoming migration, a revert.
 */
const CONTINUED_RUNS: ReadonlySet<string> = new Set(['restored', 'migrated', 'from_snapshot', 'migration']);

/** A line must be complete this long after its first byte. */
export const MAX_LINE_MS = 5000;
/** Lines judged per domain per minute; more are dropped unread. */
export const LINES_PER_MINUTE = 20;
/** Rejections logged per domain per minute; the rest are counted in the next one logged. */
const LOGGED_PER_MINUTE = 5;

export interface WatcherDeps {
  readonly hv: DomainControl;
  readonly store: PayloadStore;
  /** Changes a record under the domain's lock (VmService.updateRecord). */
  readonly update: (uuid: string, change: (record: DomainRecord | undefined) => DomainRecord | undefined) => Promise<void>;
  readonly notify: (method: 'VM.initialized', params: Record<string, unknown>) => void;
  readonly log: { info(m: string, f?: Record<string, unknown>): void; warning(m: string, f?: Record<string, unknown>): void };
  readonly now?: () => Date;
}

interface Watch {
  readonly socket: Socket;
  readonly dom: DomainRef;
  readonly run: number;
  readonly lines: ReportLines;
  readonly timer: NodeJS.Timeout;
  windowStart: number;
  judged: number;
  logged: number;
  unlogged: number;
  /** Lines handled one after another: a record change awaits the one before. */
  queue: Promise<void>;
}

export class InitWatcher {
  private readonly watches = new Map<string, Watch>();
  private closed = false;

  constructor(private readonly deps: WatcherDeps) {}

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  /** Whether the domain's channel is being read now. */
  watching(uuid: string): boolean {
    return this.watches.has(uuid);
  }

  /**
   * Connects to the running domain's channel unless connected; a new run (QEMU) of the
   * current drive makes its state `pending`, unless it continues an earlier run.
   * Resolves once connected, or not (no channel, not running): that is not an error, the
   * next sweep tries again.
   */
  async watch(dom: DomainRef): Promise<boolean> {
    if (this.closed || this.watches.has(dom.uuid)) return this.watches.has(dom.uuid);
    const run = describeDomain(await this.deps.hv.getXml(dom, { inactive: false })).id;
    if (run === undefined) return false;
    const { reason } = await this.deps.hv.stateDetail(dom);
    const continued = CONTINUED_RUNS.has(reason);
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = createConnection(this.deps.store.channelPath(dom.uuid));
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (socket === undefined) return false;
    if (this.closed || this.watches.has(dom.uuid)) {
      socket.destroy();
      return this.watches.has(dom.uuid);
    }
    const watch: Watch = {
      socket,
      dom,
      run,
      lines: new ReportLines((line) => this.line(watch, line), (reason) => this.rejected(watch, reason), MAX_LINE_MS),
      timer: setInterval(() => watch.lines.expire(), 1000),
      windowStart: performance.now(),
      judged: 0,
      logged: 0,
      unlogged: 0,
      queue: Promise.resolve(),
    };
    watch.timer.unref();
    this.watches.set(dom.uuid, watch);
    socket.on('data', (chunk: Buffer) => watch.lines.feed(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearInterval(watch.timer);
      if (this.watches.get(dom.uuid) === watch) this.watches.delete(dom.uuid);
    });
    // Not awaited: VM.start calls this under the domain's lock, which the change waits
    // for; the first line judged waits for it in turn.
    watch.queue = this.deps
      .update(dom.uuid, (record) => {
        const current = record?.current;
        if (record === undefined || current === undefined) return record;
        const known = record.initialization;
        if (known !== undefined && known.run === run && known.instanceId === current.instanceId) return record;
        // The guest of a restored, migrated or reverted run did not boot: what it reported stands.
        if (known !== undefined && known.instanceId === current.instanceId && continued) return { ...record, initialization: { ...known, run } };
        return { ...record, initialization: { state: 'pending', instanceId: current.instanceId, run, since: this.now() } };
      })
      .catch((err: unknown) => this.deps.log.warning('cannot mark the run pending', { domain: dom.name, error: err instanceof Error ? err.message : String(err) }));
    return true;
  }

  /** Every running domain with a drive of ours, connected unless it is. */
  async sync(): Promise<void> {
    for (const record of await this.deps.store.listRecords()) {
      if (record.current === undefined || this.watches.has(record.uuid)) continue;
      const dom = { uuid: record.uuid, name: record.name };
      const state = await this.deps.hv.state(dom).catch(() => 'shutoff');
      if (state === 'running' || state === 'paused') await this.watch(dom).catch(() => false);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.watches.values()) w.socket.destroy();
    this.watches.clear();
  }

  private line(watch: Watch, line: Buffer): void {
    const now = performance.now();
    if (now - watch.windowStart >= 60_000) {
      watch.windowStart = now;
      watch.judged = 0;
      watch.logged = 0;
    }
    if (++watch.judged > LINES_PER_MINUTE) {
      if (watch.judged === LINES_PER_MINUTE + 1) this.rejected(watch, `more than ${String(LINES_PER_MINUTE)} lines a minute; the rest of this minute's are dropped`);
      return;
    }
    watch.queue = watch.queue.then(() => this.judge(watch, line)).catch((err: unknown) => {
      this.deps.log.warning('a VM.initialized report could not be recorded', { domain: watch.dom.name, error: err instanceof Error ? err.message : String(err) });
    });
  }

  private async judge(watch: Watch, line: Buffer): Promise<void> {
    const { dom } = watch;
    const key = await this.deps.store.reportKey();
    let announce: InitializationState | undefined;
    let reason: string | undefined;
    await this.deps.update(dom.uuid, (record) => {
      const current = record?.current;
      if (record === undefined || current === undefined) {
        reason = 'the domain has no drive from this agent';
        return record;
      }
      // A migrated drive carries the nonce of the host that built it, recorded with it.
      const verdict = judgeReport(line, { instanceId: current.instanceId, nonce: current.nonce ?? reportNonce(key, dom.uuid, current.instanceId) });
      if (!verdict.ok) {
        reason = verdict.reason;
        return record;
      }
      const { report } = verdict;
      const known = record.initialization;
      // The same boot's report again changes nothing: each boot reports once.
      if (known?.bootId === report.bootId && known.instanceId === report.instanceId && known.state !== 'pending') return record;
      announce = {
        state: report.status,
        instanceId: report.instanceId,
        run: watch.run,
        since: known?.run === watch.run && known.instanceId === report.instanceId ? known.since : this.now(),
        reportedAt: this.now(),
        bootId: report.bootId,
        sentAt: report.sentAt,
        errors: report.errors,
        stages: report.stages,
        seconds: cloudInitSeconds(report.stages),
      };
      return { ...record, initialization: announce };
    });
    if (reason !== undefined) this.rejected(watch, reason);
    if (announce === undefined) return;
    const { state, instanceId, errors, stages, seconds, bootId, sentAt, reportedAt } = announce;
    this.deps.log.info('guest reported cloud-init finished', { domain: dom.name, instanceId, status: state, errors: errors?.length ?? 0, seconds: seconds ?? undefined });
    this.deps.notify('VM.initialized', { domain: dom, instanceId, status: state, errors, stages, seconds, bootId, sentAt, reportedAt });
  }

  private rejected(watch: Watch, reason: string): void {
    if (watch.logged >= LOGGED_PER_MINUTE) {
      watch.unlogged++;
      return;
    }
    watch.logged++;
    const more = watch.unlogged;
    watch.unlogged = 0;
    this.deps.log.warning('dropped a line from the guest on the VM.initialized channel', { domain: watch.dom.name, reason, ...(more > 0 ? { alsoDropped: more } : {}) });
  }
}

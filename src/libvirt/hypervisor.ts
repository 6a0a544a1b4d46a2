/**
 * The agent's view of libvirt: the DomainControl port (src/vm/ports.ts) plus what the
 * daemon and tests need (versions, define/undefine). Calls go to a small pool of worker
 * threads (see worker.ts for why not koffi's own async calls); the main thread never
 * blocks on libvirt. One more worker runs libvirt's event loop, which the embedded
 * QEMU driver needs to talk to QEMU.
 */
import { Worker } from 'node:worker_threads';
import { AgentError } from '../errors.js';
import type { AffectFlags, DomainControl, DomainRef, DomainState, JobProgress, MigrateRequest, MigrationControl, StateDetail } from '../vm/ports.js';
import { LibvirtError, VIR_ERR } from './errors.js';
import { FORK_GUARD_HINT, forkSafeDescriptors, isInProcessUri } from './fork-guard.js';
import type { Request, Response } from './protocol.js';
import type { MigrateParams } from './worker.js';

const WORKER = new URL('./worker.js', import.meta.url);

const XML_INACTIVE = 2;
/** VIR_DOMAIN_XML_MIGRATABLE: the XML as a destination must get it (no live-only details). */
const XML_MIGRATABLE = 8;
const START_PAUSED = 1;
/** VIR_DOMAIN_DEVICE_MODIFY_FORCE: e.g. eject a CD-ROM whose tray is locked. */
const MODIFY_FORCE = 4;
const METADATA_ELEMENT = 2;
const STATES: readonly DomainState[] = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'];
/** virDomain{Running,Paused,Shutoff}Reason, index = libvirt's number (libvirt 9.0's lists). */
const REASONS: Partial<Record<DomainState, readonly string[]>> = {
  running: ['unknown', 'booted', 'migrated', 'restored', 'from_snapshot', 'unpaused', 'migration_canceled', 'save_canceled', 'wakeup', 'crashed', 'postcopy', 'postcopy_failed'],
  paused: ['unknown', 'user', 'migration', 'save', 'dump', 'ioerror', 'watchdog', 'from_snapshot', 'shutting_down', 'snapshot', 'crashed', 'starting_up', 'postcopy', 'postcopy_failed', 'api_error'],
  shutoff: ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from_snapshot', 'daemon'],
};
/** virDomainMigrateFlags. */
const MIGRATE = { LIVE: 1, PEER2PEER: 2, PERSIST_DEST: 8, UNDEFINE_SOURCE: 16, PAUSED: 32, OFFLINE: 1024 } as const;
/** virDomainJobType: 1 bounded and 2 unbounded are jobs still running. */
const JOB_RUNNING = new Set([1, 2]);

function affect(flags: AffectFlags): number {
  return (flags.live === true ? 1 : 0) | (flags.config === true ? 2 : 0);
}

/** libvirt versions are major * 1,000,000 + minor * 1,000 + release. */
export function formatVersion(v: number): string {
  return `${String(Math.floor(v / 1_000_000))}.${String(Math.floor(v / 1000) % 1000)}.${String(v % 1000)}`;
}

interface CallWorker {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; op: string }>;
}

export interface HypervisorOptions {
  /** Threads making libvirt calls at most; each holds one connection (default 2: calls mostly wait on QEMU). */
  readonly workers?: number;
}

/**
 * libvirt 9.0 keeps one embedded QEMU driver per process: a second root, even after the
 * first connection closed, crashes it. The first root opened is the only one allowed.
 */
let embeddedRoot: string | undefined;

export class Hypervisor implements DomainControl, MigrationControl {
  private nextId = 1;
  private closed = false;

  private readonly pool: CallWorker[] = [];

  private constructor(
    readonly uri: string,
    private readonly maxWorkers: number,
  ) {}

  /**
   * One more call worker. Only the first starts with the daemon: an idle daemon needs
   * one connection, and each further thread is one more V8 isolate; the next starts when a
   * call finds every worker busy, and opens its connection with that call.
   */
  private addWorker(): CallWorker {
    const entry = this.spawnWorker();
    this.pool.push(entry);
    return entry;
  }

  private spawnWorker(): CallWorker {
    const worker = new Worker(WORKER, { workerData: { role: 'calls', uri: this.uri } });
    const entry: CallWorker = { worker, pending: new Map() };
    worker.on('message', (r: Response) => {
      const p = entry.pending.get(r.id);
      if (p === undefined) return;
      entry.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(new LibvirtError(r.error, p.op));
    });
    worker.on('error', (err) => {
      for (const p of entry.pending.values()) p.reject(new AgentError('INTERNAL', `libvirt worker failed: ${err.message}`, { cause: err }));
      entry.pending.clear();
    });
    return entry;
  }

  /** One call on a thread and connection of its own, both closed after it. */
  private async callAlone(op: string, args: readonly unknown[], what: string): Promise<unknown> {
    if (this.closed) throw new AgentError('SHUTTING_DOWN', `libvirt connection to ${this.uri} is closed`);
    const entry = this.spawnWorker();
    try {
      return await this.callOn(entry, op, args, what);
    } finally {
      await this.callOn(entry, 'close', [], 'close').catch(() => undefined);
      await entry.worker.terminate();
    }
  }

  /** Starts the event loop and the first call worker, which opens its connection. */
  static async open(uri: string, options: HypervisorOptions = {}): Promise<Hypervisor> {
    if (isInProcessUri(uri) && !forkSafeDescriptors()) throw new AgentError('HOST_SETUP', FORK_GUARD_HINT);
    if (isInProcessUri(uri)) {
      if (embeddedRoot !== undefined && embeddedRoot !== uri) {
        throw new AgentError('HOST_SETUP', `this process already runs the embedded driver for ${embeddedRoot}; libvirt allows one embedded root per process`);
      }
      embeddedRoot = uri;
    }
    // libvirt logs warnings (e.g. "tainted: high-privileges" for every root-run guest)
    // to stderr; keep its own log to errors (libvirt's level 4) unless the operator set one. Read by
    // virInitialize in the worker, from the process environment.
    process.env['LIBVIRT_LOG_OUTPUTS'] ??= '4:stderr';
    await startEventLoop();
    const hv = new Hypervisor(uri, options.workers ?? 2);
    try {
      // The first worker opens its connection now, so a bad URI fails here, once,
      // clearly; it also initializes an embedded driver before any other connection
      // (one racing it would find the driver "not active").
      await hv.callOn(hv.addWorker(), 'open', [], `connect to ${uri}`);
    } catch (err) {
      await hv.close();
      throw err;
    }
    return hv;
  }

  private callOn(w: CallWorker, op: string, args: readonly unknown[], what: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject, op: what });
      w.worker.postMessage({ id, op, args } satisfies Request);
    });
  }

  private call<T>(op: string, args: readonly unknown[], what: string): Promise<T> {
    if (this.closed) return Promise.reject(new AgentError('SHUTTING_DOWN', `libvirt connection to ${this.uri} is closed`));
    let best = this.pool[0]!;
    for (const w of this.pool) if (w.pending.size < best.pending.size) best = w;
    if (best.pending.size > 0 && this.pool.length < this.maxWorkers) best = this.addWorker();
    return this.callOn(best, op, args, what) as Promise<T>;
  }

  async versions(): Promise<{ library: string; hypervisor: string; uri: string }> {
    const v = await this.call<{ library: number; hypervisor: number; uri: string }>('versions', [], 'versions');
    return { library: formatVersion(v.library), hypervisor: formatVersion(v.hypervisor), uri: v.uri };
  }

  /** `virsh capabilities`: the host, its security models and QEMU's identity under them. */
  capabilities(): Promise<string> {
    return this.call('capabilities', [], 'host capabilities');
  }

  listDomains(): Promise<DomainRef[]> {
    return this.call('listDomains', [], 'list domains');
  }

  lookup(nameOrUuid: string): Promise<DomainRef> {
    return this.call('lookup', [nameOrUuid], `domain ${nameOrUuid}`);
  }

  getXml(dom: DomainRef, options: { inactive: boolean }): Promise<string> {
    return this.call('getXml', [dom.uuid, options.inactive ? XML_INACTIVE : 0], `XML of ${dom.name}`);
  }

  define(xml: string): Promise<DomainRef> {
    return this.call('define', [xml], 'define domain');
  }

  /** The port's name for define (DomainControl): test stand-ins keep `define` for their own set-up. */
  defineXml(xml: string): Promise<DomainRef> {
    return this.define(xml);
  }

  async undefine(dom: DomainRef): Promise<void> {
    await this.call('undefine', [dom.uuid, 0], `undefine ${dom.name}`);
  }

  async state(dom: DomainRef): Promise<DomainState> {
    return (await this.stateDetail(dom)).state;
  }

  async stateDetail(dom: DomainRef): Promise<StateDetail> {
    const [state, reason] = await this.call<[number, number]>('state', [dom.uuid], `state of ${dom.name}`);
    const name = STATES[state] ?? 'nostate';
    return { state: name, reason: REASONS[name]?.[reason] ?? (reason === 0 ? 'unknown' : `reason ${String(reason)}`) };
  }

  hasManagedSave(dom: DomainRef): Promise<boolean> {
    return this.call('hasManagedSave', [dom.uuid], `managed save image of ${dom.name}`);
  }

  snapshotXmls(dom: DomainRef): Promise<{ name: string; xml: string }[]> {
    return this.call('snapshotXmls', [dom.uuid], `snapshots of ${dom.name}`);
  }

  /**
   * Peer to peer, as VDSM migrates: the source libvirt connects to `destUri` itself. On a
   * thread of its own for as long as it lasts (minutes for a big guest), so that progress
   * reads, an abort and every other call go on meanwhile.
   */
  async migrate(dom: DomainRef, request: MigrateRequest): Promise<void> {
    const flags =
      MIGRATE.PEER2PEER |
      (request.mode === 'live' ? MIGRATE.LIVE : MIGRATE.OFFLINE | MIGRATE.PERSIST_DEST) |
      (request.mode === 'live' && request.persistXml !== undefined ? MIGRATE.PERSIST_DEST : 0) |
      (request.paused && request.mode === 'live' ? MIGRATE.PAUSED : 0) |
      (request.undefineSource ? MIGRATE.UNDEFINE_SOURCE : 0);
    const params: MigrateParams = {
      ...(request.migrateUri === undefined ? {} : { migrateUri: request.migrateUri }),
      ...(request.destXml === undefined ? {} : { destXml: request.destXml }),
      ...(request.persistXml === undefined ? {} : { persistXml: request.persistXml }),
      ...(request.bandwidthMiB === undefined ? {} : { bandwidthMiB: request.bandwidthMiB }),
    };
    await this.callAlone('migrate', [dom.uuid, request.destUri, params, flags], `migrate ${dom.name} to ${request.destUri}`);
  }

  async jobProgress(dom: DomainRef): Promise<JobProgress> {
    const info = await this.call<Record<string, number>>('jobInfo', [dom.uuid], `job of ${dom.name}`);
    return {
      active: JOB_RUNNING.has(info['type'] ?? 0),
      elapsedMs: Number(info['timeElapsed'] ?? 0),
      dataTotal: Number(info['dataTotal'] ?? 0),
      dataProcessed: Number(info['dataProcessed'] ?? 0),
      dataRemaining: Number(info['dataRemaining'] ?? 0),
    };
  }

  migratableXml(dom: DomainRef, options: { inactive: boolean }): Promise<string> {
    return this.call('getXml', [dom.uuid, XML_MIGRATABLE | (options.inactive ? XML_INACTIVE : 0)], `migratable XML of ${dom.name}`);
  }

  async abortJob(dom: DomainRef): Promise<void> {
    await this.call('abortJob', [dom.uuid], `abort the job of ${dom.name}`);
  }

  async start(dom: DomainRef, options: { paused: boolean }): Promise<void> {
    await this.call('start', [dom.uuid, options.paused ? START_PAUSED : 0], `start ${dom.name}`);
  }

  async resume(dom: DomainRef): Promise<void> {
    await this.call('resume', [dom.uuid], `resume ${dom.name}`);
  }

  async destroy(dom: DomainRef): Promise<void> {
    await this.call('destroy', [dom.uuid], `destroy ${dom.name}`);
  }

  async attachDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    await this.call('attachDevice', [dom.uuid, xml, affect(flags)], `attach a device to ${dom.name}`);
  }

  async updateDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    // Live, the tray is forced open (VDSM's changeCD does the same): a guest or its
    // firmware may hold it locked, and the only device changed is the agent's own
    // read-only CD-ROM, whose media nothing in the guest may keep.
    const force = flags.live === true ? MODIFY_FORCE : 0;
    await this.call('updateDevice', [dom.uuid, xml, affect(flags) | force], `update a device of ${dom.name}`);
  }

  async detachDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    await this.call('detachDevice', [dom.uuid, xml, affect(flags)], `detach a device from ${dom.name}`);
  }

  async getMetadata(dom: DomainRef, uri: string, flags: AffectFlags): Promise<string | null> {
    try {
      return await this.call<string>('getMetadata', [dom.uuid, METADATA_ELEMENT, uri, affect(flags)], `metadata of ${dom.name}`);
    } catch (err) {
      if (err instanceof LibvirtError && err.libvirtCode === VIR_ERR.NO_DOMAIN_METADATA) return null;
      throw err;
    }
  }

  async setMetadata(dom: DomainRef, xml: string | null, key: string, uri: string, flags: AffectFlags): Promise<void> {
    await this.call('setMetadata', [dom.uuid, METADATA_ELEMENT, xml, xml === null ? null : key, uri, affect(flags)], `metadata of ${dom.name}`);
  }

  /** Closes the connections and stops their threads; pending calls fail with SHUTTING_DOWN. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled(this.pool.map((w) => this.callOn(w, 'close', [], 'close')));
    this.closed = true;
    await Promise.all(this.pool.map((w) => w.worker.terminate()));
    await stopEventLoop();
  }
}

/**
 * libvirt's default event loop is one per process, whatever the connections: a second
 * thread running it would dispatch the first one's callbacks, and a callback registered
 * on a thread that has stopped crashes the process (seen with an embedded root and a
 * libvirtd connection open together). One thread registers it once and runs it while any
 * Hypervisor is open; with none open it waits, idle in JavaScript, so that the process
 * can exit (Node cannot end a thread that is inside a C call).
 */
interface EventLoop {
  readonly worker: Worker;
  /** [0] = 1 while the loop should run. */
  readonly run: Int32Array;
  users: number;
}

let eventLoop: Promise<EventLoop> | undefined;

function eventLoopThread(): Promise<EventLoop> {
  eventLoop ??= new Promise<EventLoop>((resolve, reject) => {
    const run = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(WORKER, { workerData: { role: 'events', run: run.buffer } });
    worker.unref();
    worker.once('message', () => resolve({ worker, run, users: 0 }));
    worker.once('error', (err) => {
      eventLoop = undefined;
      reject(err);
    });
  });
  return eventLoop;
}

async function startEventLoop(): Promise<void> {
  const loop = await eventLoopThread();
  if (loop.users++ > 0) return;
  Atomics.store(loop.run, 0, 1);
  loop.worker.postMessage('run');
}

async function stopEventLoop(): Promise<void> {
  const loop = await eventLoopThread();
  if (--loop.users > 0) return;
  Atomics.store(loop.run, 0, 0);
  // It notices within one tick of its timeout (200 ms), then says so.
  await new Promise<void>((resolve) => loop.worker.once('message', () => resolve()));
}

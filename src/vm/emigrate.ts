/**
 * The source side of a migration, in three steps an engine (or `configdrive migrate`)
 * calls in order, the destination's two (src/vm/immigrate.ts) between them:
 *
 *  1. begin (Payload.migrationBegin): the domain's drive, record facts and lineage as a
 *     ticket (src/payload/drive-ticket.ts), and an `emigrate` journal entry: from now on
 *     no change is made to the domain here, so the drive the destination is handed stays
 *     the drive the guest has;
 *  2. migrate (VM.migrate): libvirt's own migration, peer to peer, the guest paused on
 *     arrival so that the destination agent reads its channel before it runs; the XML the
 *     destination gets names the destination's paths when they differ from ours;
 *  3. settle (Payload.migrationSettle): from what libvirt shows (migration-state.ts), the
 *     copy here goes once the domain has left, or the journal entry goes and the source
 *     is exactly as before when it has not.
 *
 * The domain's lock is held for each step, not across libvirt's migration: Payload.get
 * answers meanwhile, and every change is refused by the journal entry instead.
 */
import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';
import { ticketOf, type DriveTicket } from '../payload/drive-ticket.js';
import { recordFor, type DomainRecord, type InitializationState, type PayloadStore } from '../payload/store.js';
import { escapeXmlAttribute } from './domain-xml.js';
import type { KeyedLock } from './keyed-lock.js';
import { findRecordDomain } from './lookup.js';
import { settleEmigration, type EmigrationOutcome } from './migration-state.js';
import type { DomainControl, DomainRef, MigrateRequest, MigrationControl } from './ports.js';
import { refuseIfSaved } from './saved-state.js';

/** How often a running migration's progress is announced (VM.migrationProgress). */
const PROGRESS_MS = 1000;

export interface MigrationDeps {
  readonly hv: DomainControl & MigrationControl;
  readonly store: PayloadStore;
  readonly lock: KeyedLock;
  readonly timeoutMs: number;
  readonly now?: () => Date;
  readonly notify?: (method: 'VM.migrationProgress' | 'Payload.attached' | 'Payload.removed', params: Record<string, unknown>) => void;
}

/** Where one host has a domain's image and channel socket. */
export interface DrivePaths {
  readonly image: string | null;
  readonly channel: string;
}

export interface MigrateOptions {
  readonly destUri: string;
  readonly mode: 'live' | 'offline';
  readonly migrateUri?: string;
  /** The destination's paths (Payload.migrationPrepare's reply); absent: the same as here. */
  readonly destPaths?: DrivePaths;
  readonly undefineSource: boolean;
  readonly bandwidthMiB?: number;
}

export interface MigrateResult {
  readonly domain: DomainRef;
  readonly mode: 'live' | 'offline';
  readonly seconds: number;
  /** Whether the destination's XML was rewritten to its own paths. */
  readonly retargeted: boolean;
  /** The source's VM.initialized state at the end: the destination's finish takes it. */
  readonly initialization: InitializationState | null;
}

export class Emigration {
  constructor(private readonly deps: MigrationDeps) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async begin(domain: string): Promise<{ domain: DomainRef; ticket: DriveTicket }> {
    const { hv, store } = this.deps;
    const dom = await hv.lookup(domain);
    return this.deps.lock.run(dom.uuid, async () => {
      const record = await store.readRecord(dom.uuid);
      if (record?.pending?.op === 'emigrate') {
        throw new AgentError('DOMAIN_STATE', `domain ${dom.name} has a migration begun at ${record.pending.startedAt} already; settle it first (Payload.migrationSettle)`);
      }
      if (record?.pending !== undefined) throw new AgentError('DOMAIN_STATE', `domain ${dom.name} has a change left half done (${record.pending.op}); it is resolved before a migration can begin`);
      await refuseIfSaved(hv, dom, 'a migration');
      const { state } = await hv.stateDetail(dom);
      // A Run Once drive whose run is over leaves with nothing: the definition never had it.
      const carried = state === 'shutoff' && record?.current?.runOnce === true ? withoutCurrent(record) : record;
      const image = carried?.current === undefined ? undefined : await readImage(carried.current.path, dom);
      const base = recordFor(carried, dom);
      await store.writeRecord({ ...base, pending: { op: 'emigrate', startedAt: this.now().toISOString() } });
      return { domain: dom, ticket: ticketOf(base, image, store.channelPath(dom.uuid)) };
    });
  }

  async migrate(domain: string, options: MigrateOptions): Promise<MigrateResult> {
    const { hv, store } = this.deps;
    const dom = await hv.lookup(domain);
    const record = await this.deps.lock.run(dom.uuid, () => store.readRecord(dom.uuid));
    if (record?.pending?.op !== 'emigrate') {
      throw new AgentError('DOMAIN_STATE', `domain ${dom.name} has no migration begun; call Payload.migrationBegin first and prepare the destination with its ticket (Payload.migrationPrepare)`);
    }
    const { state } = await hv.stateDetail(dom);
    const wanted = options.mode === 'live' ? state === 'running' || state === 'paused' : state === 'shutoff';
    if (!wanted) throw new AgentError('DOMAIN_STATE', `domain ${dom.name} is ${state}; a${options.mode === 'live' ? ' live migration needs it running' : 'n offline migration needs it shut off'}`);
    const ours: DrivePaths = { image: record.current?.path ?? null, channel: store.channelPath(dom.uuid) };
    const retarget = options.destPaths !== undefined && (options.destPaths.image !== ours.image || options.destPaths.channel !== ours.channel);
    const request: MigrateRequest = {
      destUri: options.destUri,
      mode: options.mode,
      paused: true,
      undefineSource: options.undefineSource,
      ...(options.migrateUri === undefined ? {} : { migrateUri: options.migrateUri }),
      ...(options.bandwidthMiB === undefined ? {} : { bandwidthMiB: options.bandwidthMiB }),
      ...(retarget ? await this.destinationXml(dom, options.mode, ours, options.destPaths!) : {}),
    };
    const started = performance.now();
    const progress = options.mode === 'live' ? setInterval(() => void this.announceProgress(dom), PROGRESS_MS) : undefined;
    try {
      await hv.migrate(dom, request);
    } finally {
      clearInterval(progress);
    }
    const after = await store.readRecord(dom.uuid);
    return { domain: dom, mode: options.mode, seconds: Math.round(performance.now() - started) / 1000, retargeted: retarget, initialization: after?.initialization ?? null };
  }

  async settle(domain: string): Promise<{ domain: DomainRef; outcome: EmigrationOutcome; initialization: InitializationState | null }> {
    const { hv, store } = this.deps;
    const found = await findRecordDomain(hv, store, domain);
    return this.deps.lock.run(found.uuid, async () => {
      const record = await store.readRecord(found.uuid);
      if (record?.pending?.op !== 'emigrate') {
        // Settled already (the sweep may get there first): libvirt says which way it went.
        const here = await hv.lookup(found.uuid).then(() => true, () => false);
        return { domain: found, outcome: here ? 'stayed' : 'left', initialization: record?.initialization ?? null };
      }
      const outcome = await settleEmigration(hv, store, record, { over: true, nowMs: this.now().getTime(), timeoutMs: this.deps.timeoutMs });
      if (outcome === 'left') this.deps.notify?.('Payload.removed', { domain: found, path: record.current?.path ?? null, reason: 'migrated away' });
      return { domain: found, outcome, initialization: record.initialization ?? null };
    });
  }

  /** The live XML (and the definition, which the destination keeps) naming the destination's paths. */
  private async destinationXml(dom: DomainRef, mode: 'live' | 'offline', from: DrivePaths, to: DrivePaths): Promise<Pick<MigrateRequest, 'destXml' | 'persistXml'>> {
    if (from.image !== null && to.image === null) throw new AgentError('DOMAIN_STATE', `the destination was prepared without a drive for ${dom.name}, which has one here: prepare it again with a new ticket`);
    const persistXml = retargetXml(await this.deps.hv.migratableXml(dom, { inactive: true }), from, to);
    if (mode === 'offline') return { persistXml };
    return { destXml: retargetXml(await this.deps.hv.migratableXml(dom, { inactive: false }), from, to), persistXml };
  }

  private async announceProgress(dom: DomainRef): Promise<void> {
    const job = await this.deps.hv.jobProgress(dom).catch(() => undefined);
    if (job === undefined || !job.active) return;
    const { elapsedMs, dataTotal, dataProcessed, dataRemaining } = job;
    this.deps.notify?.('VM.migrationProgress', { domain: dom, elapsedMs, dataTotal, dataProcessed, dataRemaining });
  }
}

function withoutCurrent(record: DomainRecord): DomainRecord {
  const { current: _ended, ...rest } = record;
  return rest;
}

async function readImage(path: string, dom: DomainRef): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new AgentError('IO_ERROR', `the drive of ${dom.name} cannot be read for its migration (${path}: ${String((err as NodeJS.ErrnoException).code)})`, { cause: err });
  }
}

/**
 * The agent's own paths (the image, the channel socket, and the image's path in our
 * metadata mark) exchanged in a domain XML, as attribute values in either quote style.
 * Nothing else in the XML can equal them: each names the domain's UUID under a store.
 */
export function retargetXml(xml: string, from: DrivePaths, to: DrivePaths): string {
  let out = xml;
  const pairs: [string, string][] = [[from.channel, to.channel]];
  if (from.image !== null && to.image !== null) pairs.push([from.image, to.image]);
  for (const [a, b] of pairs) {
    for (const q of ["'", '"']) out = out.split(`=${q}${escapeXmlAttribute(a)}${q}`).join(`=${q}${escapeXmlAttribute(b)}${q}`);
  }
  return out;
}

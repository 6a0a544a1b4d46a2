/**
 * Where a migration stands, read from libvirt, for each side's journal entry:
 *
 *  - source (`emigrate`, written by Payload.migrationBegin): the domain gone from this
 *    host, or shut off with reason `migrated`, has left: the copy here goes (unless a
 *    definition here still names it). Still here with a migration job running: wait. Still
 *    here with none: the migration failed or never started, and the source stays exactly
 *    as it was.
 *  - destination (`immigrate`, written by Payload.migrationPrepare): the domain running,
 *    defined (offline) or paused after its migration completed has arrived: the record is
 *    committed, a guest left paused is resumed. Not here: it has not arrived, and the
 *    prepared copy goes.
 *
 * "Failed or never started" and "not arrived" can also mean "not started yet": a caller
 * that knows the migration is over says so (`over: true`: Payload.migrationSettle and
 * Payload.migrationFinish); the sweep and start-up recovery give a migration
 * `timeoutMs` from its journal entry before giving up on it.
 */
import { AgentError } from '../errors.js';
import { settledRecord, type DomainRecord, type InitializationState, type PayloadStore } from '../payload/store.js';
import { describeDomain } from './domain-xml.js';
import { lookupOrNull } from './lookup.js';
import type { DomainControl, DomainRef } from './ports.js';

export type EmigrationOutcome = 'left' | 'stayed';
export type ImmigrationOutcome = 'arrived' | 'dropped';

export interface MigrationClock {
  /** The caller knows libvirt's migration is over (it returned, or never started). */
  readonly over: boolean;
  readonly nowMs: number;
  readonly timeoutMs: number;
}

function waited(record: DomainRecord, clock: MigrationClock): boolean {
  return clock.over || clock.nowMs - Date.parse(record.pending!.startedAt) >= clock.timeoutMs;
}

/** Removes the images a record names and the record itself. */
async function dropRecord(store: PayloadStore, record: DomainRecord): Promise<void> {
  for (const path of [record.current?.path, record.pending?.image?.path]) if (path !== undefined) await store.removeImage(path);
  await store.removeRecord(record.uuid);
}

/** Resolves a source's `emigrate` entry, or throws DOMAIN_STATE while the migration may still be under way. */
export async function settleEmigration(hv: DomainControl, store: PayloadStore, record: DomainRecord, clock: MigrationClock): Promise<EmigrationOutcome> {
  const dom = await lookupOrNull(hv, record.uuid);
  if (dom === null) {
    await dropRecord(store, record);
    return 'left';
  }
  const { state, reason } = await hv.stateDetail(dom);
  if (state === 'shutoff' && reason === 'migrated') {
    // The definition stayed here (no undefinesource) and names the drive: both stay, as
    // for any shut-off domain; the guest runs on the destination with its own copy.
    await writeOrDrop(store, settledRecord(record));
    return 'left';
  }
  if ((await hv.jobProgress(dom)).active) {
    throw new AgentError('DOMAIN_STATE', `domain ${dom.name} is migrating (a libvirt job runs); no change is made until its migration is settled`);
  }
  if (!waited(record, clock)) {
    throw new AgentError(
      'DOMAIN_STATE',
      `domain ${dom.name} has a migration begun at ${record.pending!.startedAt} (Payload.migrationBegin); no change is made until it is settled with Payload.migrationSettle, or ${String(Math.round(clock.timeoutMs / 1000))} s after it began`,
    );
  }
  await writeOrDrop(store, settledRecord(record));
  return 'stayed';
}

/** A record that holds nothing (a migration begun for a domain without a drive) goes. */
async function writeOrDrop(store: PayloadStore, record: DomainRecord): Promise<void> {
  if (record.current === undefined && record.lineage === undefined && record.initialization === undefined) await store.removeRecord(record.uuid);
  else await store.writeRecord(record);
}

export interface Arrival {
  readonly outcome: ImmigrationOutcome;
  /** The arrived domain, paused: the caller connects its watcher, then resumes it. */
  readonly toResume?: DomainRef;
}

/**
 * Resolves a destination's `immigrate` entry, or throws DOMAIN_STATE while the domain is
 * still arriving. `source`: the source's VM.initialized state at the end of the migration
 * (a guest may report there until the last moment), newer than the ticket's.
 */
export async function settleImmigration(hv: DomainControl, store: PayloadStore, record: DomainRecord, clock: MigrationClock, source?: InitializationState | null): Promise<Arrival> {
  const dom = await lookupOrNull(hv, record.uuid);
  if (dom === null) {
    if (!waited(record, clock)) throw new AgentError('DOMAIN_STATE', `domain ${record.name} has not arrived yet from its migration (prepared at ${record.pending!.startedAt})`);
    await dropRecord(store, record);
    return { outcome: 'dropped' };
  }
  const { state, reason } = await hv.stateDetail(dom);
  if (state === 'paused' && (reason === 'migration' || (await hv.jobProgress(dom)).active)) {
    throw new AgentError('DOMAIN_STATE', `domain ${dom.name} is still arriving (its incoming migration runs)`);
  }
  const initialization = source ?? record.initialization;
  // This host's run of the guest continues the source's: not a new boot (init-watcher.ts).
  const run = state === 'shutoff' ? undefined : describeDomain(await hv.getXml(dom, { inactive: false })).id;
  const carried = initialization === undefined || initialization === null ? {} : { initialization: run === undefined ? initialization : { ...initialization, run } };
  const { initialization: _ticket, ...rest } = settledRecord(record);
  await store.writeRecord({ ...rest, name: dom.name, ...carried });
  return { outcome: 'arrived', ...(state === 'paused' ? { toResume: dom } : {}) };
}

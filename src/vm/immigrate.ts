/**
 * The destination side of a migration (the source's is emigrate.ts):
 *
 *  - prepare (Payload.migrationPrepare): the ticket checked (drive-ticket.ts), the image
 *    written to this host's store and read back, and a record journaled `immigrate`,
 *    all before libvirt starts the destination's QEMU, which then finds the drive at the
 *    path the reply names; the channel's socket directory is the store's own;
 *  - finish (Payload.migrationFinish), once libvirt's migration is over: the domain here
 *    is committed (its VM.initialized state carried over as the same run, the channel
 *    read, then the guest resumed); a domain that did not arrive leaves nothing here.
 *
 * A domain already defined on this host is refused: libvirt would replace its definition,
 * and the drive that definition names could not be told from the arriving one.
 */
import { AgentError } from '../errors.js';
import { readIsoFile } from '../iso/index.js';
import { verifyImage } from '../payload/build-drive.js';
import { openTicket, type DriveTicket } from '../payload/drive-ticket.js';
import type { AttachedPayload, DomainRecord, InitializationState } from '../payload/store.js';
import type { DrivePaths, MigrationDeps } from './emigrate.js';
import { findRecordDomain, lookupOrNull } from './lookup.js';
import { settleImmigration, type ImmigrationOutcome } from './migration-state.js';
import type { DomainRef } from './ports.js';

export interface ImmigrationDeps extends MigrationDeps {
  /** Connects the VM.initialized watcher to an arrived domain, before it resumes. */
  readonly onRun?: (dom: DomainRef) => Promise<unknown>;
  readonly warn?: (message: string) => void;
}

export interface Prepared {
  readonly domain: DomainRef;
  /** This host's paths: the XML the destination runs must name them (VM.migrate's destPaths). */
  readonly paths: DrivePaths;
  readonly sha256: string | null;
  readonly instanceId: string | null;
  readonly generation: number | null;
}

export interface Finished {
  readonly domain: DomainRef;
  readonly outcome: ImmigrationOutcome;
  readonly resumed: boolean;
  readonly path: string | null;
  readonly instanceId: string | null;
}

export class Immigration {
  constructor(private readonly deps: ImmigrationDeps) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async prepare(ticket: DriveTicket): Promise<Prepared> {
    const { hv, store } = this.deps;
    const opened = openTicket(ticket);
    const dom = opened.domain;
    return this.deps.lock.run(dom.uuid, async () => {
      const here = await lookupOrNull(hv, dom.uuid);
      if (here !== null) {
        throw new AgentError('DOMAIN_STATE', `domain ${here.name} (${dom.uuid}) is already defined on this host; a migration here would replace its definition: undefine it here first`);
      }
      const stale = await store.readRecord(dom.uuid);
      if (stale?.pending?.op === 'immigrate') throw new AgentError('DOMAIN_STATE', `a migration of ${dom.name} is prepared here already (at ${stale.pending.startedAt}); finish it first (Payload.migrationFinish)`);
      // A record without its domain is one the sweep has not removed yet: replaced.
      if (stale?.current !== undefined) await store.removeImage(stale.current.path);
      let current: AttachedPayload | undefined;
      if (opened.drive !== null) {
        const { bytes, tree, payload } = opened.drive;
        const path = await store.putImage(dom.uuid, bytes, payload.sha256);
        try {
          verifyImage(await readIsoFile(path), tree, payload.label, path);
        } catch (err) {
          await store.removeImage(path);
          throw err;
        }
        current = { ...payload, path };
      }
      const record: DomainRecord = {
        version: 1,
        uuid: dom.uuid,
        name: dom.name,
        ...(current === undefined ? {} : { current }),
        ...(opened.lineage === null ? {} : { lineage: opened.lineage }),
        ...(opened.initialization === null ? {} : { initialization: opened.initialization }),
        pending: { op: 'immigrate', startedAt: this.now().toISOString() },
      };
      await store.writeRecord(record);
      return {
        domain: dom,
        paths: { image: current?.path ?? null, channel: store.channelPath(dom.uuid) },
        sha256: current?.sha256 ?? null,
        instanceId: current?.instanceId ?? null,
        generation: current?.generation ?? null,
      };
    });
  }

  /** `source`: the source's VM.initialized state as VM.migrate ended (it may be newer than the ticket's). */
  async finish(domain: string, source?: InitializationState | null): Promise<Finished> {
    const { hv, store } = this.deps;
    const found = await findRecordDomain(hv, store, domain);
    return this.deps.lock.run(found.uuid, async () => {
      const record = await store.readRecord(found.uuid);
      if (record?.pending?.op !== 'immigrate') {
        const here = await lookupOrNull(hv, found.uuid);
        // The sweep may have finished it first.
        if (here !== null && record !== undefined) return { domain: here, outcome: 'arrived' as const, resumed: false, path: record.current?.path ?? null, instanceId: record.current?.instanceId ?? null };
        throw new AgentError('PAYLOAD_NOT_FOUND', `no migration of ${found.name} is prepared on this host (Payload.migrationPrepare)`);
      }
      const arrival = await settleImmigration(hv, store, record, { over: true, nowMs: this.now().getTime(), timeoutMs: this.deps.timeoutMs }, source);
      if (arrival.outcome === 'dropped') {
        return { domain: found, outcome: arrival.outcome, resumed: false, path: null, instanceId: null };
      }
      const dom = await hv.lookup(found.uuid);
      const { state } = await hv.stateDetail(dom);
      if (state !== 'shutoff') {
        await this.deps.onRun?.(dom).catch((err: unknown) => this.deps.warn?.(`cannot read the VM.initialized channel of ${dom.name}: ${err instanceof Error ? err.message : String(err)}`));
      }
      if (arrival.toResume !== undefined) await hv.resume(dom);
      const current = record.current;
      if (current !== undefined) {
        const { path, sha256, instanceId, generation, target } = current;
        this.deps.notify?.('Payload.attached', { domain: dom, path, sha256, instanceId, generation, reason: 'migrated', target });
      }
      return { domain: dom, outcome: arrival.outcome, resumed: arrival.toResume !== undefined, path: current?.path ?? null, instanceId: current?.instanceId ?? null };
    });
  }
}

/**
 * The agent's parts wired together once, for the daemon and for tests that drive the
 * agent in-process (test/e2e): the flows share one per-domain lock, the VM.initialized
 * watcher records through the service and is connected before any guest resumes.
 */
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import type { DriveBuilder } from '../../src/payload/build-pool.js';
import type { PayloadStore } from '../../src/payload/store.js';
import type { WriterName } from '../../src/iso/index.js';
import { Emigration } from '../../src/vm/emigrate.js';
import { Immigration } from '../../src/vm/immigrate.js';
import { InitWatcher, type WatcherDeps } from '../../src/vm/init-watcher.js';
import { KeyedLock } from '../../src/vm/keyed-lock.js';
import { VmService } from '../../src/vm/service.js';
import type { Migrations } from './handler.js';

export interface AgentParts {
  readonly service: VmService;
  readonly watcher: InitWatcher;
  readonly migrations: Migrations;
}

export interface ComposeOptions {
  readonly hv: Hypervisor;
  readonly store: PayloadStore;
  readonly builder: DriveBuilder;
  readonly writer: WriterName;
  readonly migrationTimeoutMs: number;
  /** Every notification the parts send (Payload.*, VM.initialized, VM.migrationProgress). */
  readonly notify: (method: string, params: Record<string, unknown>) => void;
  readonly log: WatcherDeps['log'];
}

export function composeAgent(o: ComposeOptions): AgentParts {
  const lock = new KeyedLock();
  const settle = { migrationTimeoutMs: o.migrationTimeoutMs };
  const holder: { watcher?: InitWatcher } = {};
  const onRun = (dom: { uuid: string; name: string }) => holder.watcher?.watch(dom) ?? Promise.resolve(false);
  const warn = (m: string) => o.log.warning(m);
  const service = new VmService({ hv: o.hv, store: o.store, builder: o.builder, writer: o.writer, lock, settle, notify: o.notify, warn, onRun });
  const watcher = new InitWatcher({ hv: o.hv, store: o.store, update: (uuid, change) => service.updateRecord(uuid, change), notify: o.notify, log: o.log });
  holder.watcher = watcher;
  const moves = { hv: o.hv, store: o.store, lock, timeoutMs: o.migrationTimeoutMs, notify: o.notify };
  return { service, watcher, migrations: { emigration: new Emigration(moves), immigration: new Immigration({ ...moves, onRun, warn }) } };
}

/**
 * The agent as configdrived runs it, for the e2e guests: a VmService whose documents are
 * built on the daemon's build pool, with its state in `stateDir`, and the VM.initialized
 * watcher it connects every domain it starts to. What the watcher hears and drops is kept
 * for the tests to judge.
 */
import { composeAgent } from '../../agent/daemon/compose.js';
import type { Migrations } from '../../agent/daemon/handler.js';
import { openStore } from '../../agent/daemon/store-setup.js';
import { CONFIG_TABLE } from '../../src/config/config.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import { BuildPool } from '../../src/payload/build-pool.js';
import type { DomainRef } from '../../src/vm/ports.js';
import type { VmService } from '../../src/vm/service.js';

export interface Notified {
  readonly params: Record<string, unknown>;
  /** The host's clock when it arrived. */
  readonly at: number;
}

export interface GuestAgent {
  readonly service: VmService;
  readonly migrations: Migrations;
  /** Every VM.initialized notification, in order. */
  readonly initialized: Notified[];
  /** Why the watcher dropped each line it dropped. */
  readonly dropped: string[];
  /** The notifications about one domain. */
  reportsOf(name: string): Notified[];
  /** A start by others (virsh, an engine): the daemon's sweep would find it; here it is connected at once. */
  plainStart(name: string): Promise<DomainRef>;
  close(): Promise<void>;
}

export async function openGuestAgent(hv: Hypervisor, stateDir: string): Promise<GuestAgent> {
  const { store } = await openStore(hv, { stateDir, isoGroup: '' });
  const builder = new BuildPool({ threads: CONFIG_TABLE.buildThreads.default, idleMs: CONFIG_TABLE.buildThreadIdleMs.default });
  const initialized: Notified[] = [];
  const dropped: string[] = [];
  const { service, watcher, migrations } = composeAgent({
    hv,
    store,
    builder,
    writer: 'builtin',
    migrationTimeoutMs: CONFIG_TABLE.migrationTimeoutMs.default,
    notify: (method, params) => method === 'VM.initialized' && initialized.push({ params, at: Date.now() }),
    log: { info: () => undefined, warning: (m, f) => (f?.['reason'] === undefined ? console.log(`      warning: ${m}`) : dropped.push(String(f['reason']))) },
  });
  return {
    service,
    migrations,
    initialized,
    dropped,
    reportsOf: (name) => initialized.filter((n) => (n.params['domain'] as { name: string }).name === name),
    async plainStart(name) {
      const dom = await hv.lookup(name);
      await hv.start(dom, { paused: false });
      await watcher.watch(dom);
      return dom;
    },
    async close() {
      watcher.close();
      await builder.close();
    },
  };
}

/**
 * VM.initialized's channel on real libvirt and QEMU, both host kinds: VM.start puts it
 * in the definition with the drive, the running domain has it (libvirt bound the socket
 * the definition names), and the watcher is connected before the guest resumes. With
 * no guest OS nothing writes into the port, so the record stays `pending`; what guests
 * write is the e2e suite's part (test/e2e/guest-boot.e2e.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../agent/daemon/store-setup.js';
import { REPORT_PORT } from '../../src/cloudinit/index.js';
import { parseInitialization } from '../../src/initialization/index.js';
import type { PayloadStore } from '../../src/payload/store.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import { InitWatcher } from '../../src/vm/init-watcher.js';
import { VmService } from '../../src/vm/service.js';
import { domainXml, LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { settings } from '../helpers/initialization.js';

const INIT = parseInitialization('configdrive: 1\nhostname: channel-test\n').initialization;

for (const target of LIBVIRT_TARGETS) describe(`the VM.initialized channel on real libvirt (${target.title})`, function () {
  this.timeout(180_000);
  let lv: TestLibvirt;
  let stateDir = '';
  let store: PayloadStore;
  let service: VmService;
  let watcher: InitWatcher;
  const logged: string[] = [];

  before(async () => {
    lv = await target.open();
    stateDir = mkdtempSync(join(tmpdir(), 'init-channel-'));
    ({ store } = await openStore(lv.hv, { stateDir, isoGroup: '' }));
    const holder: { watcher?: InitWatcher } = {};
    service = new VmService({ hv: lv.hv, store, writer: 'builtin', onRun: (dom) => holder.watcher!.watch(dom) });
    watcher = new InitWatcher({
      hv: lv.hv,
      store,
      update: (uuid, change) => service.updateRecord(uuid, change),
      notify: () => undefined,
      log: { info: (m) => logged.push(m), warning: (m) => logged.push(m) },
    });
    holder.watcher = watcher;
  });

  after(async () => {
    watcher.close();
    await lv.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('VM.start adds the channel with the drive; the live domain has it and the daemon is connected before the guest runs', async () => {
    const name = `init-channel-${lv.kind}`;
    await lv.hv.define(domainXml({ name, macs: ['52:54:00:14:00:01'] }));
    const t0 = performance.now();
    const { domain } = await service.start(name, settings(INIT));
    const startMs = performance.now() - t0;
    const path = store.channelPath(domain.uuid);
    const inactive = describeDomain(await lv.hv.getXml(domain, { inactive: true })).channels;
    assert.deepEqual(inactive, [{ name: REPORT_PORT, type: 'unix', path }], 'the definition has exactly our channel');
    const live = describeDomain(await lv.hv.getXml(domain, { inactive: false }));
    assert.ok(live.channels.some((c) => c.name === REPORT_PORT && c.path === path), `live XML: ${JSON.stringify(live.channels)}`);
    assert.ok(statSync(path).isSocket(), 'libvirt bound the socket the definition names');
    assert.equal(watcher.watching(domain.uuid), true, 'connected during the start');
    const got = await service.get(name);
    assert.equal(got.initialization?.state, 'pending');
    assert.equal(got.initialization?.instanceId, `${domain.uuid}-g1`);
    assert.equal(got.initialization?.run, live.id);
    assert.equal(typeof got.initialization?.pendingSeconds, 'number');
    console.log(`      VM.start with the channel: ${startMs.toFixed(0)} ms; socket ${path} (${String(Buffer.byteLength(path))} bytes)`);
    // A second start of the same drive keeps one channel and makes the new run pending.
    await lv.hv.destroy(domain);
    assert.equal(await watcher.sync().then(() => watcher.watching(domain.uuid)), false, 'a stopped domain is not watched');
    await service.start(name, settings(INIT));
    assert.equal(describeDomain(await lv.hv.getXml(domain, { inactive: true })).channels.length, 1);
    const again = await service.get(name);
    assert.equal(again.initialization?.state, 'pending');
    assert.notEqual(again.initialization?.run, got.initialization?.run, 'a new run');
    // The daemon restarting: a new watcher finds the running domain at its first sync.
    watcher.close();
    const fresh = new InitWatcher({ hv: lv.hv, store, update: (u, c) => service.updateRecord(u, c), notify: () => undefined, log: { info: () => undefined, warning: () => undefined } });
    await fresh.sync();
    assert.equal(fresh.watching(domain.uuid), true, 'reconnected at start');
    fresh.close();
  });
});

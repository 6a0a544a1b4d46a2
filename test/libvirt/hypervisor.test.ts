/**
 * The koffi bindings against real libvirt 9.0 (qemu:///embed): versions, libvirt's own
 * error codes through the worker threads, metadata, memory held flat under many calls,
 * and the descriptor guard that keeps QEMU startable.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../src/errors.js';
import { LibvirtError, VIR_ERR } from '../../src/libvirt/errors.js';
import { forkSafeDescriptors } from '../../src/libvirt/fork-guard.js';
import { domainXml, openEmbedded, type TestLibvirt } from '../helpers/libvirt.js';

const URI = 'https://configdrive-agent.dev/xmlns/test/1';

describe('libvirt bindings (koffi, qemu:///embed)', function () {
  this.timeout(120_000);
  let lv: TestLibvirt;
  before(async () => (lv = await openEmbedded()));
  after(async () => (lv as TestLibvirt | undefined)?.close());

  it('reports the library and QEMU versions and lists domains with uuid and name', async () => {
    const v = await lv.hv.versions();
    assert.match(v.library, /^9\.\d+\.\d+$/);
    assert.match(v.hypervisor, /^\d+\.\d+\.\d+$/);
    assert.ok(v.uri.startsWith('qemu:///embed'));
    const ref = await lv.hv.define(domainXml({ name: 'listed-vm' }));
    const listed = await lv.hv.listDomains();
    assert.deepEqual(listed.find((d) => d.name === 'listed-vm'), ref);
    assert.match(ref.uuid, /^[0-9a-f-]{36}$/);
    await lv.hv.undefine(ref);
  });

  it("carries libvirt's own code, domain and message for errors raised on worker threads", async () => {
    await assert.rejects(lv.hv.lookup('missing-domain'), (e: unknown) =>
      e instanceof LibvirtError && e.code === 'DOMAIN_NOT_FOUND' && e.libvirtCode === VIR_ERR.NO_DOMAIN && e.libvirtDomain === 10 && /missing-domain/.test(e.message));
    await assert.rejects(lv.hv.define('<domain type="qemu"><name>x</name>'), (e: unknown) =>
      e instanceof LibvirtError && e.code === 'LIBVIRT_ERROR' && e.libvirtCode === VIR_ERR.XML_DETAIL && /Premature end of data/.test(e.message));
    // Many failing calls at once, on all workers: each gets its own error, not a neighbour's.
    const names = Array.from({ length: 40 }, (_, i) => `ghost-${String(i)}`);
    const errors = await Promise.all(names.map((n) => lv.hv.lookup(n).then(() => null, (e: unknown) => e)));
    errors.forEach((e, i) => assert.ok(e instanceof LibvirtError && e.message.includes(`'${names[i]!}'`), String(e)));
  });

  it('finds a domain whose name looks like a UUID by that name, and lets a real UUID win over such a name', async () => {
    const named = await lv.hv.define(domainXml({ name: '0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f' }));
    assert.deepEqual(await lv.hv.lookup('0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f'), named, 'no domain has that UUID: the name is meant');
    const other = await lv.hv.define(domainXml({ name: 'uuid-owner' }));
    const impostor = await lv.hv.define(domainXml({ name: other.uuid }));
    assert.deepEqual(await lv.hv.lookup(other.uuid), other, 'as virsh reads it, a UUID names the domain that has it');
    assert.deepEqual(await lv.hv.lookup(impostor.uuid), impostor, 'the other one is reached by its own UUID');
    for (const ref of [named, other, impostor]) await lv.hv.undefine(ref);
  });

  it('defines, reads XML, sets and clears metadata under our namespace, live and persistent', async () => {
    const ref = await lv.hv.define(domainXml({ name: 'meta-vm' }));
    assert.equal(await lv.hv.getMetadata(ref, URI, { config: true }), null);
    await lv.hv.setMetadata(ref, '<drive path="/x.iso"/>', 'cd', URI, { config: true });
    assert.match((await lv.hv.getMetadata(ref, URI, { config: true }))!, /<drive path="\/x\.iso"\/>/);
    assert.match(await lv.hv.getXml(ref, { inactive: true }), new RegExp(`<cd:drive xmlns:cd="${URI}" path="/x.iso"/>`));
    await lv.hv.start(ref, { paused: true });
    assert.equal(await lv.hv.state(ref), 'paused');
    await lv.hv.setMetadata(ref, '<drive path="/y.iso"/>', 'cd', URI, { live: true });
    assert.match((await lv.hv.getMetadata(ref, URI, { live: true }))!, /y\.iso/);
    assert.match((await lv.hv.getMetadata(ref, URI, { config: true }))!, /x\.iso/, 'live change leaves the definition alone');
    await lv.hv.setMetadata(ref, null, 'cd', URI, { live: true, config: true });
    assert.equal(await lv.hv.getMetadata(ref, URI, { config: true }), null);
    await lv.hv.destroy(ref);
    await lv.hv.undefine(ref);
  });

  it('keeps memory flat over 5,000 calls that return strings and domain handles', async () => {
    const ref = await lv.hv.define(domainXml({ name: 'mem-vm' }));
    const round = async (n: number) => {
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, () => lv.hv.getXml(ref, { inactive: true }).then(() => lv.hv.lookup(ref.uuid))));
    };
    await round(1000);
    global.gc?.();
    const before = process.memoryUsage().rss;
    await round(5000);
    global.gc?.();
    const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
    // Each call copies a ~1.5 KB string; a leak of the C string or the handle would
    // grow RSS by 10 MB or more over these 10,000 calls. Allocator noise stays well under.
    assert.ok(grown < 8, `RSS grew ${grown.toFixed(1)} MiB over 10,000 calls`);
    await lv.hv.undefine(ref);
  });

  it('refuses to run the embedded driver in a process where libuv holds descriptors 3 and 4', async () => {
    assert.equal(forkSafeDescriptors(), true, 'the test runner itself is started with 3 and 4 taken');
    const script = `import('${resolve(dirname(fileURLToPath(import.meta.url)), '../../src/libvirt/hypervisor.js')}').then(async (m) => {
      try { await m.Hypervisor.open('qemu:///embed?root=/nonexistent-configdrive-test'); console.log('opened'); }
      catch (e) { console.log(e.code); }
    })`;
    const r = await execa(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.stdout.trim(), 'HOST_SETUP');
    assert.ok(new AgentError('HOST_SETUP', 'x').rpcCode < 0);
  });
});

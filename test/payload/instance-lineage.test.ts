import assert from 'node:assert/strict';
import type { DriveIdentity } from '../../src/cloudinit/types.js';
import { buildInstance, generationOf, type InstanceHistory } from '../../src/payload/instance-lineage.js';

const UUID = '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

/** A stand-in translation: the content is the settings plus the identity, as in a real drive. */
function builder(settings: string) {
  const calls: DriveIdentity[] = [];
  const build = (identity: DriveIdentity) => {
    calls.push(identity);
    return Promise.resolve({ contentDigest: `${settings}|${identity.instanceId}|${String(identity.firstInstance)}` });
  };
  return { calls, build };
}

const history = (settings: string, generation: number, more: Partial<InstanceHistory> = {}): InstanceHistory => {
  const instanceId = more.instanceId ?? `${UUID}-g${String(generation)}`;
  const firstInstance = more.firstInstance ?? generation === 1;
  return { generation, instanceId, contentDigest: `${settings}|${instanceId}|${String(firstInstance)}`, firstInstance, seenRunning: more.seenRunning ?? true };
};

describe('payload instance lineage', () => {
  it('reads the generation only from an id the agent made for this domain', () => {
    assert.equal(generationOf(`${UUID}-g12`, UUID), 12);
    assert.equal(generationOf(`${UUID}-g0`, UUID), undefined);
    assert.equal(generationOf(UUID, UUID), undefined);
    assert.equal(generationOf('0a0a0a0a-0b0b-4c0c-8d0d-0e0e0e0e0e0e-g3', UUID), undefined);
  });

  it("gives a domain's first drive generation 1, built once, as the guest's first instance", async () => {
    const b = builder('A');
    const r = await buildInstance({ uuid: UUID }, b.build);
    assert.deepEqual(r.instance, { instanceId: `${UUID}-g1`, generation: 1, reason: 'first instance', firstInstance: true });
    assert.equal(b.calls.length, 1);
  });

  it('keeps the last instance when a rebuild with its identity gives the same bytes, with one build', async () => {
    const b = builder('A');
    const r = await buildInstance({ uuid: UUID, history: history('A', 3) }, b.build);
    assert.deepEqual([r.instance.instanceId, r.instance.reason], [`${UUID}-g3`, 'unchanged']);
    assert.equal(b.calls.length, 1);
  });

  it('moves to the next generation when the settings differ, keeping host keys of a guest that has run', async () => {
    const b = builder('B');
    const r = await buildInstance({ uuid: UUID, history: history('A', 3) }, b.build);
    assert.deepEqual(r.instance, { instanceId: `${UUID}-g4`, generation: 4, reason: 'settings changed', firstInstance: false });
    assert.equal(b.calls.length, 2);
  });

  it('still treats the next instance as the first when the guest never ran the last one', async () => {
    const r = await buildInstance({ uuid: UUID, history: history('A', 1, { seenRunning: false }) }, builder('B').build);
    assert.equal(r.instance.firstInstance, true);
  });

  it('makes a new instance on request even with unchanged settings, without the comparison build', async () => {
    const b = builder('A');
    const r = await buildInstance({ uuid: UUID, history: history('A', 2), reinitialize: true }, b.build);
    assert.deepEqual([r.instance.generation, r.instance.reason], [3, 'reinitialize requested']);
    assert.equal(b.calls.length, 1);
  });

  it('never keeps the bare domain UUID an older drive used: the next drive is a new generation', async () => {
    const r = await buildInstance({ uuid: UUID, history: history('A', 1, { instanceId: UUID }) }, builder('A').build);
    assert.equal(r.instance.instanceId, `${UUID}-g2`);
  });

  it("takes the caller's instance_id, and warns when it is the guest's current one but the settings changed", async () => {
    const fresh = await buildInstance({ uuid: UUID, history: history('A', 2), requestedId: 'mine-1' }, builder('A').build);
    assert.deepEqual([fresh.instance.instanceId, fresh.instance.generation, fresh.instance.reason, fresh.warnings], ['mine-1', 3, 'instance_id given', []]);
    const stale = await buildInstance({ uuid: UUID, history: history('A', 3, { instanceId: 'mine-1' }), requestedId: 'mine-1' }, builder('B').build);
    assert.equal(stale.instance.generation, 3);
    assert.match(stale.warnings[0] ?? '', /instance_id "mine-1" is the one this domain's guest already has, so cloud-init will not apply the changed settings/);
    const same = await buildInstance({ uuid: UUID, history: history('A', 3, { instanceId: 'mine-1' }), requestedId: 'mine-1' }, builder('A').build);
    assert.deepEqual([same.instance.reason, same.warnings], ['unchanged', []]);
  });
});

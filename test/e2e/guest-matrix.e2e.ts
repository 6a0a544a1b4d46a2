/**
 * Issue 13, the guest matrix: the seed's first test case and the lifecycle boots (issue
 * 17) on every Debian generation other than bookworm (which runs the full suite in
 * guest-boot.e2e.ts): Debian 11 (cloud-init 20.4, ENI), Debian 13 (25.1, netplan and
 * systemd-networkd), forky (26.2, NetworkManager). Each guest gets four boots through
 * the agent's VmService on qemu:///embed, one guest at a time: the first boot with every
 * setting, a reboot with the same drive, a boot without it, and generation 2. Each boot's
 * report is judged check by check into a table printed at the end; a boot's test fails
 * if any of its checks did.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kvmUsable } from '../../src/libvirt/embed.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import type { DomainRef } from '../../src/vm/ports.js';
import { VmService } from '../../src/vm/service.js';
import { LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { firstBoot, generation2, initialized, noDrive, sameDrive, type Check, type Expected } from './guest-checks.js';
import { evidence, rendererOf } from './guest-facts.js';
import { boot, createOverlay, guestDomainXml, guestImage, keepBoot, linkImage, tearDownGuestSuite, type Boot, type GuestImage, type GuestSpec, type GuestSuite } from './harness.js';
import { openGuestAgent, type GuestAgent } from './guest-agent.js';
import { MATRIX_TABLE } from './matrix-table.js';
import { expectedOf, GUEST_FILES, GUEST_RULE, RENEWED, RENEWED_EXPECTED } from './requests.js';
import { settings } from '../helpers/initialization.js';

/** Generations beside bookworm's full suite, oldest first. */
const MATRIX: readonly GuestSuite[] = ['bullseye', 'trixie', 'forky'];
const table = MATRIX_TABLE;

function failures(checks: readonly Check[]): string {
  return checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail.slice(0, 200)}`).join('\n');
}

describe(`The guest matrix: seed test 1 and the lifecycle on every Debian generation (qemu:///embed, ${kvmUsable() ? 'KVM' : 'TCG'})`, function () {
  this.timeout(3_600_000);
  let lv: TestLibvirt;
  let hv: Hypervisor;
  let service: VmService;
  let agent: GuestAgent;
  let work = '';

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'e2e-matrix-'));
    chmodSync(work, 0o711);
    const target = LIBVIRT_TARGETS[0]!;
    lv = await target.open();
    hv = lv.hv;
    agent = await openGuestAgent(hv, join(work, 'state'));
    service = agent.service;
  });

  tearDownGuestSuite(
    () => work,
    async () => {
      console.log('\n      guest matrix (bookworm: the full suite above):');
      for (const line of table.render()) console.log(`      ${line}`);
      await (agent as GuestAgent | undefined)?.close();
      await (lv as TestLibvirt | undefined)?.close();
    },
  );

  MATRIX.forEach((suite, n) => describe(`Debian ${suite}`, function () {
    let image: GuestImage;
    let spec: GuestSpec;
    let expected: Expected;
    const boots = new Map<string, Boot>();
    const mac = (i: number) => `52:54:00:e3:${String(n).padStart(2, '0')}:0${String(i)}`;

    before(async () => {
      image = linkImage(await guestImage(suite), join(work));
      spec = { name: `e2e-matrix-${suite}`, macs: [mac(1), mac(2), mac(3)], paths: Object.keys(GUEST_FILES), workDir: work };
      await createOverlay(image, spec);
      const dom = await hv.define(guestDomainXml(image, spec));
      expected = expectedOf(dom.uuid, spec.macs, image.hostKeys);
      console.log(`      ${suite} image: ${image.summary}`);
    });

    async function run(label: string, start: () => Promise<DomainRef>): Promise<Boot> {
      const b = await boot(hv, spec, start);
      const file = `${suite} ${label}`;
      keepBoot(work, file, b);
      boots.set(label, b);
      const f = b.facts;
      if (label === 'R1') {
        table.guest(suite, `cloud-init ${f.cloud_init_version}, Python ${f.python_version}, ${rendererOf(f)} renderer`);
      }
      console.log(`      ${suite} ${label}: report after ${b.seconds.toFixed(1)} s; cloud-final done ${f.cloud_final_done_us === null || f.cloud_final_done_us === 0 ? '-' : `${(f.cloud_final_done_us / 1e6).toFixed(1)} s`} (guest uptime)`);
      return b;
    }

    /** `instanceId`: the drive's, for VM.initialized; null for the drive-less boot. */
    function judge(label: string, b: Boot, checks: readonly Check[], instanceId: string | null): void {
      const us = b.facts.cloud_final_done_us;
      const all = [...checks, initialized(agent.reportsOf(spec.name).map((n) => n.params), b.facts, instanceId)];
      table.record(suite, label, all, { reportS: b.seconds, cloudFinalS: us === null || us === 0 ? null : us / 1e6 });
      assert.equal(failures(all), '', `${suite} ${label}: failed checks`);
    }

    const earlier = (label: string) => {
      const b = boots.get(label);
      assert.ok(b, `the ${label} boot ran`);
      return b;
    };

    it('R1: the first boot through VM.start applies every setting (seed test 1)', async () => {
      const b = await run('R1', async () => (await service.start(spec.name, settings(GUEST_RULE))).domain);
      judge('R1', b, await firstBoot(b.facts, expected), expected.instanceId);
    });

    it('R2: a reboot with the same drive re-runs nothing', async () => {
      const first = earlier('R1');
      const b = await run('R2', () => agent.plainStart(spec.name));
      evidence(`${suite} R2`, b.facts, first.facts);
      judge('R2', b, sameDrive(b.facts, first.facts), expected.instanceId);
    });

    it('R3: a boot without the drive keeps instance, host keys, users and the static network', async () => {
      const first = earlier('R1');
      assert.ok((await service.detach(spec.name)).removed, 'the drive was attached until now');
      const b = await run('R3', () => agent.plainStart(spec.name));
      evidence(`${suite} R3`, b.facts, first.facts);
      judge('R3', b, noDrive(b.facts, first.facts, expected), null);
    });

    it('R4: a drive with new settings is generation 2, applied with the host keys kept', async () => {
      const first = earlier('R1');
      const dom = await hv.lookup(spec.name);
      let reply = '';
      const b = await run('R4', async () => {
        const r = await service.start(spec.name, settings(RENEWED));
        reply = `${r.instance.instanceId} (${r.instance.reason})`;
        return r.domain;
      });
      evidence(`${suite} R4`, b.facts, first.facts);
      assert.equal(reply, `${dom.uuid}-g2 (settings changed)`);
      judge('R4', b, await generation2(b.facts, first.facts, expected, { ...RENEWED_EXPECTED, instanceId: `${dom.uuid}-g2` }), `${dom.uuid}-g2`);
    });
  }));
});

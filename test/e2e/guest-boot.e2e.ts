/**
 * Issue 6, the seed's own test: a Debian 12 guest with the distribution's cloud-init and
 * its default configuration boots from the agent's drive, and what the guest reports
 * about itself shows every setting applied. Real libvirt, real QEMU (TCG unless a full
 * KVM module is loaded), the agent's VmService, on both kinds of host: qemu:///embed and
 * a libvirt daemon with QEMU as libvirt-qemu. Boots are few and overlap where they can:
 * one boot checks many settings.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { USER_DATA_PATH } from '../../src/cloudinit/index.js';
import { readIsoFile, writeIsoImage } from '../../src/iso/index.js';
import { kvmUsable } from '../../src/libvirt/embed.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import type { DomainRef } from '../../src/vm/ports.js';
import { VmService, type AttachResult } from '../../src/vm/service.js';
import { parseVdsmCreate } from '../../src/vm/vdsm-xml.js';
import { LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { firstBoot, generation2, initialized as initializedCheck, noDrive, sameDrive } from './guest-checks.js';
import { openGuestAgent, type GuestAgent } from './guest-agent.js';
import { MATRIX_TABLE } from './matrix-table.js';
import { ALICE_KEY, expectedOf, fixture, GUEST_RULE, GUEST_RULE_XML, RENEWED, RENEWED_EXPECTED, ROOT_KEY, SEED } from './requests.js';
import { addrs, evidence, linkByMac, pathContent, rendererOf, shadowVerifies, systemUsers } from './guest-facts.js';
import { boot, bootAcrossReboot, createOverlay, keepBoot, tearDownGuestSuite, guestDomainXml, guestImage, linkImage, type Boot, type GuestFacts, type GuestImage, type GuestSpec } from './harness.js';
import { settings } from '../helpers/initialization.js';

const IMAGE_HOSTNAME = 'configdrive-guest';

const macs = (n: number) => [1, 2, 3].map((i) => `52:54:00:e2:0${String(n)}:0${String(i)}`);

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The drive-less boot's proof: ds-identify looked for our datasources, found none, and disabled cloud-init. */
function assertDisabledByGenerator(f: GuestFacts): void {
  assert.match(f.ds_identify_log ?? '', /DSLIST=ConfigDrive NoCloud/, f.ds_identify_log ?? '(no ds-identify.log)');
  assert.match(f.ds_identify_log ?? '', /notfound=disabled/);
  assert.match(f.cloud_init_status.out, /status: disabled/, f.cloud_init_status.out);
  assert.equal(f.cloud_init_ran, false, `cloud-init logged nothing this boot: ${JSON.stringify(f.lifecycle_log)}`);
}

function cloudInitDone(f: GuestFacts): void {
  assert.match(f.cloud_init_status.out, /status: done/, `cloud-init finished: ${f.cloud_init_status.out}${f.cloud_init_status.err}`);
  assert.deepEqual(f.cloud_init_warnings, [], 'cloud-init logged no warnings');
  assert.equal(f.failed_units.trim(), '', 'no systemd unit failed');
}

for (const target of LIBVIRT_TARGETS) describe(`A real Debian 12 guest with stock cloud-init, configured from the agent's drive (${target.title}, ${kvmUsable() ? 'KVM' : 'TCG'})`, function () {
  this.timeout(1_500_000);
  /** The negative controls and Run Once test the guest's cloud-init, not the host: one host is enough. */
  const lifecycleControls = target === LIBVIRT_TARGETS[0];
  let image: GuestImage;
  let lv: TestLibvirt;
  let hv: Hypervisor;
  let service: VmService;
  let agent: GuestAgent;
  const reportsOf = (name: string) => agent.reportsOf(name);
  let work = '';
  const full: GuestSpec = {
    name: 'e2e-full',
    macs: macs(1),
    paths: ['/tmp/testFile1.txt', '/etc/configdrive-e2e/base64.txt', '/var/tmp/custom-script-ran'],
    workDir: '',
  };
  let fullSpec: GuestSpec;
  const boots = new Map<string, Boot>();
  /** Boots started early so that two guests share the two cores; tests await them. */
  let installCdBoot: Promise<{ boot: Boot; installIso: string; isoSha: string; before: string; after: string }>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'e2e-'));
    // QEMU under a libvirt daemon is another user: it must reach the image, the overlays
    // and the drives in here (but may not list them).
    chmodSync(work, 0o711);
    image = linkImage(await guestImage(), work);
    console.log(`      guest image: ${image.summary}`);
    lv = await target.open();
    hv = lv.hv;
    agent = await openGuestAgent(hv, join(work, 'state'));
    service = agent.service;
    fullSpec = { ...full, workDir: work };
    await createOverlay(image, fullSpec);
    await hv.define(guestDomainXml(image, fullSpec));
  });

  tearDownGuestSuite(
    () => work,
    async () => {
      // before() may have failed before opening either.
      await (agent as GuestAgent | undefined)?.close();
      await (lv as TestLibvirt | undefined)?.close();
    },
  );

  async function bootFull(label: string, start: () => Promise<DomainRef>): Promise<Boot> {
    const b = await boot(hv, fullSpec, start);
    keepBoot(work, label, b);
    boots.set(label, b);
    const f = b.facts;
    console.log(
      `      ${label}: report after ${b.seconds.toFixed(1)} s; guest uptime: cloud-final done ${((f.cloud_final_done_us ?? 0) / 1e6).toFixed(1)} s, ` +
        `reporter ${f.reporter_started_s.toFixed(1)}-${f.uptime_s.toFixed(1)} s ${JSON.stringify(f.reporter_timings)}`,
    );
    if (lifecycleControls) await recordInMatrix(label, b);
    return b;
  }

  /** The same boots judged by the guest matrix's checks, as the table's bookworm column (guest-matrix.e2e.ts prints it). */
  async function recordInMatrix(label: string, b: Boot): Promise<void> {
    const dom = await hv.lookup(fullSpec.name);
    const expected = expectedOf(dom.uuid, fullSpec.macs, image.hostKeys);
    const first = boots.get('first boot')?.facts;
    const f = b.facts;
    const row = { 'first boot': 'R1', 'second boot, same drive': 'R2', 'third boot, no drive': 'R3', 'fourth boot, generation 2': 'R4' }[label];
    if (row === undefined || (row !== 'R1' && first === undefined)) return;
    const checks =
      row === 'R1'
        ? await firstBoot(f, expected)
        : row === 'R2'
          ? sameDrive(f, first!)
          : row === 'R3'
            ? noDrive(f, first!, expected)
            : await generation2(f, first!, expected, { ...RENEWED_EXPECTED, instanceId: `${dom.uuid}-g2` });
    const instanceId = row === 'R3' ? null : row === 'R4' ? `${dom.uuid}-g2` : expected.instanceId;
    checks.push(initializedCheck(reportsOf(fullSpec.name).map((n) => n.params), f, instanceId));
    if (row === 'R1') MATRIX_TABLE.guest('bookworm', `cloud-init ${f.cloud_init_version}, Python ${f.python_version}, ${rendererOf(f)} renderer; two guests at a time`);
    const us = f.cloud_final_done_us;
    MATRIX_TABLE.record('bookworm', row, checks, { reportS: b.seconds, cloudFinalS: us === null || us === 0 ? null : us / 1e6 });
  }

  it('applies every setting on the first boot through VM.start (seed test 1)', async () => {
    // The install-CD guest boots beside this one.
    installCdBoot = bootWithInstallCd();
    installCdBoot.catch(() => undefined); // awaited (and reported) by its own test
    const b = await bootFull('first boot', async () => (await service.start('e2e-full', settings(GUEST_RULE))).domain);
    const f = b.facts;
    assert.equal(f.error, undefined);
    cloudInitDone(f);
    const dom = await hv.lookup('e2e-full');
    assert.equal(f.instance_id, `${dom.uuid}-g1`, "the domain's first generation, never the bare UUID");
    // Host name, set and persisted.
    assert.equal(f.hostname, 'cloudInitInstanceName');
    assert.equal(f.etc_hostname, 'cloudInitInstanceName');
    // Passwords: each shadow entry verifies its password.
    assert.ok(await shadowVerifies(f, 'root', 'myPass'), 'root password works');
    assert.ok(await shadowVerifies(f, 'alice', 'alice-Pa55 with spaces'), "alice's password works");
    assert.equal(await shadowVerifies(f, 'root', 'wrong'), false, 'the check can fail');
    // Keys: root's (both, and usable: no forced command) and alice's.
    const rootKeys = f.authorized_keys.root ?? '';
    assert.ok(rootKeys.split('\n').includes(ROOT_KEY), `root's key installed as given: ${rootKeys}`);
    assert.ok(rootKeys.includes('ssh-rsa AAAAB3Nza[…]75zkdD user@domain.com'), "the seed's key too");
    assert.ok(f.authorized_keys.alice?.split('\n').includes(ALICE_KEY), "alice's key");
    // No default user: alice is the only account beyond the system's.
    assert.deepEqual(systemUsers(f), ['alice']);
    // SSH host keys regenerated: none of the image's keys survived.
    assert.ok(Object.keys(f.host_keys).length >= 3, 'rsa, ecdsa and ed25519 host keys exist');
    for (const [name, key] of image.hostKeys) assert.notEqual(f.host_keys[name], key, `${name} was regenerated`);
    // Time zone.
    assert.equal(f.timezone, 'Asia/Jerusalem');
    assert.match(f.localtime, /\/Asia\/Jerusalem$/);
    // DNS: the servers and search domains reach the resolver.
    const resolv = f.resolv_conf ?? '';
    assert.match(resolv, /^nameserver 8\.8\.8\.8$/m, resolv);
    assert.match(resolv, /^nameserver 127\.0\.0\.1$/m, resolv);
    assert.match(resolv, /^search .*\bqa\.lab\b.*\bredhat\.com\b/m, resolv);
    // NICs matched by MAC, named as asked: static v4+v6, DHCP, SLAAC.
    const [m0, m1, m2] = fullSpec.macs as [string, string, string];
    assert.equal(linkByMac(f, m0).ifname, 'eth0');
    assert.deepEqual(addrs(f, m0, 'inet').map((a) => `${a.local}/${String(a.prefixlen)}`), ['192.168.2.11/24']);
    assert.deepEqual(addrs(f, m0, 'inet6').map((a) => `${a.local}/${String(a.prefixlen)}`), ['2001::1234/64']);
    assert.ok(f.routes4.some((r) => r.dst === 'default' && r.gateway === '192.168.2.1' && r.dev === 'eth0'), 'static IPv4 gateway');
    assert.equal(linkByMac(f, m1).ifname, 'eth1');
    const dhcp = addrs(f, m1, 'inet');
    assert.equal(dhcp.length, 1);
    assert.match(dhcp[0]?.local ?? '', /^10\.0\.2\.\d+$/, "eth1's address comes from QEMU's DHCP server");
    assert.equal(dhcp[0]?.dynamic, true, 'and is a lease');
    // IPv6 "none" configures nothing; the kernel's default still accepts QEMU's router
    // advertisement, as it does on any Debian host.
    assert.ok(addrs(f, m1, 'inet6').every((a) => a.dynamic === true && a.local.startsWith('fec0::')), 'eth1 has no IPv6 address from the drive');
    assert.equal(linkByMac(f, m2).ifname, 'eth2');
    assert.deepEqual(addrs(f, m2, 'inet'), [], 'eth2 has no IPv4');
    const slaac = addrs(f, m2, 'inet6');
    assert.ok(slaac.some((a) => a.local.startsWith('fec0::') && a.prefixlen === 64), `eth2 autoconfigured from QEMU's router advertisement: ${JSON.stringify(slaac)}`);
    // Files and the custom script.
    assert.equal(pathContent(f, '/tmp/testFile1.txt'), 'temp content');
    assert.equal(pathContent(f, '/etc/configdrive-e2e/base64.txt'), 'line one\nline two: with a colon\n');
    assert.equal(pathContent(f, '/var/tmp/custom-script-ran'), 'custom script ran as root\n');
    // Only our drive: one CD-ROM, labelled config-2.
    assert.deepEqual(Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]), ['config-2']);
    // VM.initialized: the guest's reporter, from the drive alone, reported done for this boot.
    const reports = reportsOf('e2e-full');
    assert.equal(reports.length, 1, `one VM.initialized: ${JSON.stringify(reports)}`);
    const n = reports[0]!;
    assert.equal(n.params['status'], 'done');
    assert.equal(n.params['instanceId'], `${dom.uuid}-g1`);
    assert.equal(n.params['bootId'], f.boot_id);
    assert.deepEqual(n.params['errors'], []);
    printLatency('first boot', n);
    const got = await service.get('e2e-full');
    assert.equal(got.initialization?.state, 'done');
    assert.equal(got.initialization?.bootId, f.boot_id);
  });

  /** Host clock at the notification against the guest clock at cloud-final's end (the report's modules-final.finished). */
  function printLatency(label: string, n: { params: Record<string, unknown>; at: number }): void {
    const finished = (n.params['stages'] as Record<string, { finished: number | null }>)['modules-final']?.finished;
    assert.equal(typeof finished, 'number', 'the report has the end of modules-final');
    const sent = n.params['sentAt'] as number;
    console.log(
      `      VM.initialized, ${label}: ${String(n.params['status'])}, ${((n.at - finished! * 1000) / 1000).toFixed(2)} s after cloud-final finished ` +
        `(guest clock to host clock): written ${(sent - finished!).toFixed(2)} s after it (guest clock), notified ${((n.at - sent * 1000) / 1000).toFixed(2)} s after the write (host - guest clock); cloud-init ${String(n.params['seconds'])} s`,
    );
  }

  it('keeps the install CD, its boot order and content, and the guest sees both CD-ROMs (seed test 2)', async () => {
    const { boot: b, installIso, isoSha, before, after } = await installCdBoot;
    const f = b.facts;
    cloudInitDone(f);
    assert.equal(f.hostname, 'cloudInitInstanceName');
    assert.ok(await shadowVerifies(f, 'root', 'myPass'));
    assert.equal(pathContent(f, '/tmp/testFile1.txt'), 'temp content');
    const labels = Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]).sort();
    assert.deepEqual(labels, ['DEBIAN_12_INSTALL', 'config-2']);
    assert.equal(sha256(installIso), isoSha, 'the install CD is unchanged');
    assert.deepEqual(JSON.parse(after), JSON.parse(before), 'the install CD device, source and boot order are unchanged');
  });

  async function bootWithInstallCd() {
    const spec: GuestSpec = { name: 'e2e-install-cd', macs: macs(2), paths: ['/tmp/testFile1.txt'], workDir: work };
    const installIso = join(work, 'install.iso');
    writeFileSync(installIso, writeIsoImage({ files: new Map([['README.txt', new TextEncoder().encode('Debian install media stand-in\n')]]) }, { volumeId: 'DEBIAN_12_INSTALL' }));
    const isoSha = sha256(installIso);
    await createOverlay(image, spec);
    const disksXml = `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${installIso}'/><target dev='hdc' bus='ide'/><readonly/><boot order='1'/></disk>`;
    const dom = await hv.define(guestDomainXml(image, { ...spec, disksXml }));
    const installDisk = async () =>
      JSON.stringify(describeDomain(await hv.getXml(dom, { inactive: true })).disks.filter((d) => d.source === installIso));
    const before = await installDisk();
    const b = await boot(hv, spec, async () => (await service.start(spec.name, settings(SEED))).domain);
    console.log(`      install CD: report after ${b.seconds.toFixed(1)} s`);
    return { boot: b, installIso, isoSha, before, after: await installDisk() };
  }

  it('R2: a reboot with the same drive re-runs nothing: instance, host keys, network files and host name stay', async () => {
    startSideChain();
    const first = boots.get('first boot');
    assert.ok(first, 'the first boot ran');
    const b = await bootFull('second boot, same drive', () => plainStart('e2e-full'));
    const f = b.facts;
    cloudInitDone(f);
    evidence('second boot, same drive', f, first.facts);
    assert.ok(f.lifecycle_log.some((l) => /init will now be targeting instance id: \S+-g1\. new=False/.test(l)), 'cloud-init took it as the same instance');
    assert.notEqual(f.boot_id, first.facts.boot_id, 'a new boot');
    assert.match(f.ds_identify_log ?? '', /DSLIST=ConfigDrive NoCloud/, 'ds-identify checked our two datasources');
    assert.match(f.ds_identify_log ?? '', /check for 'ConfigDrive' returned found/);
    assert.equal(f.instance_id, first.facts.instance_id);
    assert.deepEqual(f.host_keys, first.facts.host_keys, 'host keys unchanged');
    assert.deepEqual(f.network_files, first.facts.network_files, 'network files unchanged');
    assert.equal(f.passwd, first.facts.passwd, 'no user created');
    assert.equal(f.hostname, 'cloudInitInstanceName');
    // VM.initialized again, for the new boot, with nothing re-run.
    const reports = reportsOf('e2e-full');
    assert.equal(reports.length, 2, `a second VM.initialized: ${JSON.stringify(reports.map((r) => r.params['bootId']))}`);
    assert.equal(reports[1]!.params['status'], 'done');
    assert.equal(reports[1]!.params['bootId'], f.boot_id, 'for the new boot');
    printLatency('second boot, same drive', reports[1]!);
  });

  const plainStart = (name: string) => agent.plainStart(name);

  it('R3: a boot without the drive does not run cloud-init at all: nothing destroyed, no fallback network, no waiting', async () => {
    const first = boots.get('first boot');
    const withDrive = boots.get('second boot, same drive');
    assert.ok(first && withDrive, 'the earlier boots ran');
    const detached = await service.detach('e2e-full');
    assert.ok(detached.removed, 'the drive was attached until now');
    const b = await bootFull('third boot, no drive', () => plainStart('e2e-full'));
    const f = b.facts;
    evidence('third boot, no drive', f, first.facts);
    assert.deepEqual(Object.keys(f.cdroms), [], 'no CD-ROM in the guest');
    assertDisabledByGenerator(f);
    assert.equal(f.instance_id, first.facts.instance_id, 'the same instance, not iid-datasource-none');
    assert.deepEqual(f.host_keys, first.facts.host_keys, 'host keys unchanged');
    assert.deepEqual(f.network_files, first.facts.network_files, 'network files unchanged: no DHCP fallback');
    assert.equal(f.passwd, first.facts.passwd, 'no default user created');
    assert.equal(f.hostname, 'cloudInitInstanceName', 'the host name persisted');
    const [m0] = fullSpec.macs as [string];
    assert.deepEqual(addrs(f, m0, 'inet').map((a) => a.local), ['192.168.2.11'], 'the static address is still there');
    assert.equal(f.failed_units.trim(), '');
    assert.equal(reportsOf('e2e-full').length, 2, 'a drive-less boot reports nothing');
    assert.equal((await service.get('e2e-full')).payload, null);
    // The times are printed for comparison, not asserted (TCG on a shared machine varies).
    console.log(`      boot to report: ${withDrive.seconds.toFixed(1)} s with the drive, ${b.seconds.toFixed(1)} s without`);
  });

  it('R4: a drive with new settings is a new generation, applied on the next boot, host keys kept', async () => {
    const first = boots.get('first boot');
    assert.ok(first);
    let instance = '';
    const b = await bootFull('fourth boot, generation 2', async () => {
      const r = await service.start('e2e-full', settings(RENEWED));
      instance = `${r.instance.instanceId} (${r.instance.reason})`;
      return r.domain;
    });
    const f = b.facts;
    cloudInitDone(f);
    evidence('fourth boot, generation 2', f, first.facts);
    const dom = await hv.lookup('e2e-full');
    assert.equal(instance, `${dom.uuid}-g2 (settings changed)`);
    assert.equal(f.instance_id, `${dom.uuid}-g2`);
    assert.ok(f.lifecycle_log.some((l) => l.includes(`previous iid found to be ${dom.uuid}-g1`)), 'cloud-init saw g1 before');
    assert.ok(f.lifecycle_log.some((l) => /init will now be targeting instance id: \S+-g2\. new=True/.test(l)), 'and took g2 as a new instance');
    assert.equal(f.hostname, 'renewedName');
    assert.ok(await shadowVerifies(f, 'root', 'newPass'), 'the new root password works');
    const [m0] = fullSpec.macs as [string];
    assert.deepEqual(addrs(f, m0, 'inet').map((a) => a.local), ['192.168.2.22'], 'the new address');
    assert.deepEqual(f.host_keys, first.facts.host_keys, 'host keys kept on a re-initialization');
  });

  it('VM.initialized: a failing custom script reports error with cloud-init\'s message; garbage, an oversized line and a wrong nonce from the guest change nothing', async () => {
    const spec: GuestSpec = { name: 'e2e-failing', macs: macs(7), workDir: work };
    await createOverlay(image, spec);
    await hv.define(guestDomainXml(image, spec));
    const port = '/dev/virtio-ports/org.configdrive-agent.0';
    // The guest turned hostile first: each line below reaches the daemon before the reporter's.
    const script = [
      '#!/bin/sh',
      `p=${port}`,
      "printf 'garbage\\n' > $p",
      "head -c 20000 /dev/zero | tr '\\0' x > $p; printf '\\n' > $p",
      `printf '{"v":1,"instanceId":"%s","nonce":"${'0'.repeat(32)}","status":"done","errors":[],"stages":{},"bootId":"%s","sentAt":null}\\n' "$(cat /var/lib/cloud/data/instance-id)" "$(cat /proc/sys/kernel/random/boot_id)" > $p`,
      'echo "configdrive-e2e: failing on purpose" >&2',
      'exit 3',
      '',
    ].join('\n');
    const b = await boot(hv, spec, async () => (await service.start(spec.name, settings({ ...GUEST_RULE, customScript: script }))).domain);
    keepBoot(work, 'failing script', b);
    console.log(`      failing script: report after ${b.seconds.toFixed(1)} s`);
    const reports = reportsOf(spec.name);
    assert.equal(reports.length, 1, `exactly one VM.initialized: ${JSON.stringify(reports.map((r) => r.params))}`);
    const n = reports[0]!;
    assert.equal(n.params['status'], 'error');
    const errors = n.params['errors'] as string[];
    assert.ok(errors.some((e) => /scripts.user|Runparts/i.test(e)), `cloud-init's own message: ${JSON.stringify(errors)}`);
    printLatency('failing script', n);
    for (const why of ['not JSON', 'line over the 8192-byte limit', "nonce is not the current drive's"]) assert.ok(agent.dropped.includes(why), `dropped: ${why}: ${JSON.stringify(agent.dropped)}`);
    const got = await service.get(spec.name);
    assert.equal(got.initialization?.state, 'error');
    assert.deepEqual(got.initialization?.errors, errors);
    console.log(`      cloud-init's errors: ${JSON.stringify(errors)}; dropped: ${JSON.stringify(agent.dropped)}`);
  });

  /**
   * Guests beside the first one's boots, one at a time (two cores): a drive with the
   * wrong label, the negative controls, Run Once, and a re-initialization that asks for
   * new host keys. Each boot awaits the one before; tests await their boots.
   */
  const side = new Map<string, Promise<Boot>>();
  function startSideChain(): void {
    let previous: Promise<unknown> = installCdBoot.catch(() => undefined);
    const step = (label: string, spec: GuestSpec, start: () => Promise<DomainRef>) => {
      const run = previous.then(async () => {
        const b = await boot(hv, spec, start);
        keepBoot(work, label, b);
        console.log(`      ${label}: report after ${b.seconds.toFixed(1)} s`);
        return b;
      });
      run.catch(() => undefined); // awaited, and so reported, by its own test
      side.set(label, run);
      previous = run.catch(() => undefined);
    };
    const labels: GuestSpec = { name: 'e2e-label', macs: macs(3), workDir: work };
    step('wrong label', labels, () => bootWithWrongLabel(labels));
    const legacy: GuestSpec = { name: 'e2e-legacy', macs: macs(4), workDir: work };
    step('legacy: instance-id = UUID', legacy, async () => {
      await createOverlay(image, legacy);
      const dom = await hv.define(guestDomainXml(image, legacy));
      legacyWarnings.push(...(await service.start(legacy.name, settings({ ...GUEST_RULE, instanceId: dom.uuid }))).warnings);
      return dom;
    });
    step('legacy: generation 2 after the UUID', legacy, async () => {
      const r = await service.start(legacy.name, settings(RENEWED));
      legacyWarnings.push(...r.warnings);
      return r.domain;
    });
    step('VM.create', vdsmSpec(), async () => {
      await createOverlay(image, vdsmSpec());
      return (await service.create(parseVdsmCreate(vdsmCreateXml()))).domain;
    });
    if (!lifecycleControls) return;
    const oldPin: GuestSpec = { name: 'e2e-old-pin', macs: macs(5), workDir: work };
    step('old pin: drive', oldPin, async () => {
      await createOverlay(image, oldPin);
      await hv.define(guestDomainXml(image, oldPin));
      return (await service.start(oldPin.name, await oldPinDrive(oldPin.name))).domain;
    });
    step('old pin: no drive', oldPin, async () => {
      await service.detach(oldPin.name);
      return plainStart(oldPin.name);
    });
    const once: GuestSpec = { name: 'e2e-run-once', macs: macs(6), workDir: work };
    step('run once', once, async () => {
      await createOverlay(image, once);
      await hv.define(guestDomainXml(image, once));
      return (await service.start(once.name, settings(GUEST_RULE), { persistent: false })).domain;
    });
    step('run once: plain start', once, () => plainStart(once.name));
    // Generation 2 asks the guest to wait after its report for a new drive, then reboot
    // (test/e2e/guest/report.py): generation 3 goes in while it runs.
    const rebootTrigger = { path: '/etc/configdrive-e2e/reboot-on-new-drive', content: new TextEncoder().encode('after the report, wait for a new drive and reboot\n') };
    const run = previous.then(() =>
      bootAcrossReboot(
        hv,
        once,
        async () => (await service.start(once.name, settings({ ...RENEWED, regenerateSshKeys: true, files: [...RENEWED.files, rebootTrigger] }))).domain,
        async () => {
          liveAttach = await service.attach(once.name, settings(LIVE));
        },
      ),
    );
    const labelled = [LIVE_BEFORE, LIVE_AFTER].map((label, i) => {
      const b = run.then(async (both) => {
        const one = both[i]!;
        keepBoot(work, label, one);
        console.log(`      ${label}: report after ${one.seconds.toFixed(1)} s`);
        return one;
      });
      b.catch(() => undefined);
      side.set(label, b);
      return b;
    });
    previous = Promise.all(labelled).catch(() => undefined);
  }
  const legacyWarnings: string[] = [];

  /**
   * VDSM's VM.create as oVirt engine sends it, for the e2e guest: its domain XML with the
   * ovirt-vm namespace, a CD-ROM whose source is PAYLOAD:, and the engine's config-2
   * files in the metadata (the engine writes them itself; VDSM only packs them).
   */
  const vdsmSpec = (): GuestSpec => ({ name: 'e2e-vdsm', macs: macs(8), paths: ['/etc/configdrive-e2e/vdsm.txt'], workDir: work });
  const VDSM_UUID = randomUUID();
  const VDSM_FILES: Record<string, string> = {
    'openstack/latest/meta_data.json': JSON.stringify({ uuid: `${VDSM_UUID}-engine-1`, hostname: 'vdsm-created', name: 'e2e-vdsm', launch_index: 0, availability_zone: 'nova' }),
    'openstack/latest/user_data': '#cloud-config\nhostname: vdsm-created\nssh_pwauth: false\nwrite_files:\n- path: /etc/configdrive-e2e/vdsm.txt\n  content: written from the engine payload\n',
  };
  function vdsmCreateXml(): string {
    const files = Object.entries(VDSM_FILES).map(([path, content]) => `<ovirt-vm:file path="${path}">${Buffer.from(content).toString('base64')}</ovirt-vm:file>`);
    const metadata = `<uuid>${VDSM_UUID}</uuid>
  <metadata xmlns:ovirt-vm="http://ovirt.org/vm/1.0"><ovirt-vm:vm>
    <ovirt-vm:launchPaused>false</ovirt-vm:launchPaused>
    <ovirt-vm:device devtype="disk" name="hdc"><ovirt-vm:payload><ovirt-vm:volId>config-2</ovirt-vm:volId>${files.join('')}</ovirt-vm:payload></ovirt-vm:device>
  </ovirt-vm:vm></metadata>`;
    const cdrom = `<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file="PAYLOAD:" startupPolicy="optional"/><target dev="hdc" bus="ide"/><readonly/></disk>`;
    return guestDomainXml(image, { ...vdsmSpec(), disksXml: cdrom }).replace(`<name>${vdsmSpec().name}</name>`, `<name>${vdsmSpec().name}</name>\n  ${metadata}`);
  }
  const LIVE_BEFORE = 'run once: generation 2 with new host keys';
  const LIVE_AFTER = 'run once: generation 3 put in while it ran, after a reboot';
  /** Generation 3: a new host name only. */
  const LIVE = { ...RENEWED, hostName: 'liveName' };
  let liveAttach: AttachResult | undefined;

  /**
   * The agent's drive with today's pin replaced by the earlier one (ConfigDrive, then
   * None). Without the custom script, so that user_data is one plain cloud-config (a MIME
   * part would be base64).
   */
  async function oldPinDrive(domain: string): Promise<{ kind: 'raw-files'; tree: Map<string, Uint8Array> }> {
    const document = GUEST_RULE_XML.replace(/<custom_script>[\s\S]*<\/custom_script>/, '');
    const built = await service.buildOnly({ kind: 'initialization', document, format: 'xml' }, domain);
    const files = new Map((await readIsoFile(built.path)).files);
    const userData = Buffer.from(files.get(USER_DATA_PATH)!).toString('utf8');
    assert.match(userData, /datasource_list: \[ ConfigDrive, NoCloud \]/);
    files.set(USER_DATA_PATH, new TextEncoder().encode(userData.replace('datasource_list: [ ConfigDrive, NoCloud ]', 'datasource_list: [ ConfigDrive, None ]')));
    return { kind: 'raw-files', tree: files };
  }

  async function bootWithWrongLabel(spec: GuestSpec): Promise<DomainRef> {
    // The agent's own drive, with only its label changed.
    const built = await service.buildOnly({ kind: 'initialization', document: fixture('fixtures/seed/initialization.xml').toString('utf8'), format: 'xml' });
    const tree = await readIsoFile(built.path);
    const iso = join(work, 'wrong-label.iso');
    writeFileSync(iso, writeIsoImage({ files: tree.files }, { volumeId: 'config-3' }));
    await createOverlay(image, spec);
    const disksXml = `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${iso}'/><target dev='hdc' bus='ide'/><readonly/></disk>`;
    await hv.define(guestDomainXml(image, { ...spec, disksXml }));
    return plainStart(spec.name);
  }

  const sideBoot = async (label: string): Promise<GuestFacts> => {
    const run = side.get(label);
    assert.ok(run, `the ${label} boot was started`);
    return (await run).facts;
  };

  it('ignores a drive whose label is not config-2', async () => {
    const f = await sideBoot('wrong label');
    assert.equal(f.hostname, IMAGE_HOSTNAME, 'the host name was not touched');
    assert.deepEqual(systemUsers(f), [], 'no user was created');
    assert.equal(f.instance_id, '', 'cloud-init never took an instance-id');
    assert.match(f.cloud_init_status.out, /status: disabled/, f.cloud_init_status.out);
    assert.deepEqual(Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]), ['config-3'], 'the guest did see the drive');
  });

  it('negative control: a guest first set up with instance-id = UUID ignores every later drive, and the agent says so', async () => {
    const one = await sideBoot('legacy: instance-id = UUID');
    const two = await sideBoot('legacy: generation 2 after the UUID');
    cloudInitDone(one);
    const dom = await hv.lookup('e2e-legacy');
    evidence('legacy: generation 2 after the UUID', two, one);
    assert.equal(one.instance_id, dom.uuid);
    assert.ok(legacyWarnings.some((w) => w.includes('is the domain UUID')), `the first start warned: ${JSON.stringify(legacyWarnings)}`);
    assert.ok(legacyWarnings.some((w) => w.includes('keeps that instance from its cache')), `the second start warned: ${JSON.stringify(legacyWarnings)}`);
    assert.equal(two.instance_id, dom.uuid, 'the guest kept its cached instance');
    assert.equal(two.hostname, 'cloudInitInstanceName', 'generation 2 was never read');
  });

  it("VM.create: oVirt engine's domain XML with a PAYLOAD: CD-ROM boots the guest configured from the engine's files", async () => {
    const f = await sideBoot('VM.create');
    cloudInitDone(f);
    assert.equal(f.instance_id, `${VDSM_UUID}-engine-1`, "the engine's instance-id, as sent");
    assert.equal(f.hostname, 'vdsm-created');
    assert.equal(pathContent(f, '/etc/configdrive-e2e/vdsm.txt'), 'written from the engine payload');
    assert.deepEqual(Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]), ['config-2'], 'the payload drive, labelled by its volId');
    const definition = await hv.getXml(await hv.lookup(vdsmSpec().name), { inactive: true });
    assert.doesNotMatch(definition, /PAYLOAD:|ovirt-vm:payload/, 'the definition names the stored image, and keeps no payload files');
  });

  // On one host kind only: these test the guest's cloud-init, not the host.
  if (lifecycleControls) {
    it("negative control: the earlier pin [ConfigDrive, None] lets a drive-less boot fall to DataSourceNone's damage", async () => {
      const withDrive = await sideBoot('old pin: drive');
      const without = await sideBoot('old pin: no drive');
      cloudInitDone(withDrive);
      evidence('old pin: no drive', without, withDrive);
      assert.equal(without.instance_id, 'iid-datasource-none', 'a new instance from DataSourceNone');
      assert.notDeepEqual(without.host_keys, withDrive.host_keys, 'host keys replaced');
      assert.notDeepEqual(without.network_files, withDrive.network_files, 'the network configuration rewritten (DHCP fallback)');
      const [m0] = macs(5) as [string];
      assert.ok(!addrs(without, m0, 'inet').some((a) => a.local === '192.168.2.11'), 'the static address is gone');
    });

    it('Run Once: the drive configures that run; a plain start after it boots without the drive and changes nothing', async () => {
      const once = await sideBoot('run once');
      const plain = await sideBoot('run once: plain start');
      cloudInitDone(once);
      const dom = await hv.lookup('e2e-run-once');
      assert.equal(once.instance_id, `${dom.uuid}-g1`);
      assert.equal(once.hostname, 'cloudInitInstanceName');
      evidence('run once: plain start', plain, once);
      assert.deepEqual(Object.keys(plain.cdroms), [], 'the definition kept no drive');
      assertDisabledByGenerator(plain);
      assert.equal(plain.instance_id, once.instance_id);
      assert.deepEqual(plain.host_keys, once.host_keys);
      assert.deepEqual(plain.network_files, once.network_files);
      assert.equal(plain.hostname, 'cloudInitInstanceName');
    });

    it('R4 with regenerate_ssh_keys: a re-initialization that asks for new host keys gets them', async () => {
      const before = await sideBoot('run once: plain start');
      const f = await sideBoot(LIVE_BEFORE);
      cloudInitDone(f);
      evidence('run once: generation 2 with new host keys', f, before);
      assert.equal(f.hostname, 'renewedName');
      assert.ok(Object.keys(f.host_keys).length >= 3);
      for (const [name, key] of Object.entries(before.host_keys)) assert.notEqual(f.host_keys[name], key, `${name} replaced`);
    });

    it('a drive changed while the guest runs is what its next boot reads: generation 3 after a reboot inside the run', async () => {
      const before = await sideBoot(LIVE_BEFORE);
      const f = await sideBoot(LIVE_AFTER);
      const dom = await hv.lookup('e2e-run-once');
      assert.ok(liveAttach, 'Payload.attach ran while the guest waited');
      assert.equal(liveAttach.deferred, null, 'the running guest got the drive');
      assert.equal(liveAttach.verified.liveSource, true);
      assert.equal(`${liveAttach.instance.instanceId} (${liveAttach.instance.reason})`, `${dom.uuid}-g3 (settings changed)`);
      cloudInitDone(f);
      evidence(LIVE_AFTER, f, before);
      assert.notEqual(f.boot_id, before.boot_id, 'a new boot');
      assert.equal(f.instance_id, `${dom.uuid}-g3`);
      assert.ok(f.lifecycle_log.some((l) => l.includes(`previous iid found to be ${dom.uuid}-g2`)), 'cloud-init saw g2 before');
      assert.ok(f.lifecycle_log.some((l) => /init will now be targeting instance id: \S+-g3\. new=True/.test(l)), 'and took g3 as a new instance');
      assert.equal(f.hostname, 'liveName');
      assert.deepEqual(f.host_keys, before.host_keys, 'host keys kept: generation 3 did not ask for new ones');
      assert.deepEqual(Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]), ['config-2'], 'one drive in the guest');
      const last = reportsOf('e2e-run-once').at(-1);
      assert.equal(last?.params['instanceId'], `${dom.uuid}-g3`, 'VM.initialized for generation 3');
      assert.equal(last?.params['status'], 'done');
      assert.equal(last?.params['bootId'], f.boot_id);
      const definition = describeDomain(await hv.getXml(dom, { inactive: true }));
      assert.deepEqual(definition.disks.filter((d) => d.device === 'cdrom').map((d) => d.source), [liveAttach.payload.path], 'the definition holds generation 3 too');
    });
  }
});

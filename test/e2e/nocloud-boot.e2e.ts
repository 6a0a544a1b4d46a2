/**
 * Issue 15 item 6 on a real guest: the Debian 12 image (stock cloud-init 22.4) boots from a
 * NoCloud drive (label cidata, meta-data, user-data, vendor-data, network-config) that the
 * daemon's request path built: the RPC parameters parsed by parseAction, performed by the
 * daemon's own handler over a VmService on qemu:///embed, as configdrived does (the socket
 * is the only part left out: an embed root admits one process, and the test needs it too).
 * Three boots: the drive configures the guest; the same drive again, after the drive's pin
 * (`datasource_list: [ ConfigDrive, NoCloud ]`) is in the guest, is found by ds-identify
 * and re-runs nothing; without the drive, ds-identify disables cloud-init.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createHandler } from '../../agent/daemon/handler.js';
import { kvmUsable } from '../../src/libvirt/embed.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import { createLogger } from '../../src/log.js';
import { parseAction } from '../../src/rpc/actions.js';
import type { DomainRef } from '../../src/vm/ports.js';
import { VmService } from '../../src/vm/service.js';
import { LIBVIRT_TARGETS, type TestLibvirt } from '../helpers/libvirt.js';
import { boot, createOverlay, guestDomainXml, guestImage, keepBoot, linkImage, tearDownGuestSuite, type Boot, type GuestFacts, type GuestSpec } from './harness.js';
import { openGuestAgent, type GuestAgent } from './guest-agent.js';

const ROOT_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGTIyIPimoqw9CiTPE17sYN/NvXm0NFnufdTgc2XzEJY root@engine';
const ROOT_PASSWORD = 'noCloud-Pa55';
const HOST = 'nocloud-guest';
const MACS = ['52:54:00:e2:0c:01', '52:54:00:e2:0c:02'];

/** The settings as an engine sends them: oVirt REST XML. */
const SETTINGS = `<initialization>
  <host><address>${HOST}</address></host>
  <authorized_keys><authorized_key><user><user_name>root</user_name></user><key>${ROOT_KEY}</key></authorized_key></authorized_keys>
  <users><user><user_name>root</user_name><password>${ROOT_PASSWORD}</password></user></users>
  <dns_servers>192.0.2.53</dns_servers>
  <dns_search>nocloud.test</dns_search>
  <nic_configurations>
    <nic_configuration>
      <name>eth0</name>
      <boot_protocol>static</boot_protocol>
      <ip><address>192.168.7.21</address><netmask>255.255.255.0</netmask><gateway>192.168.7.1</gateway></ip>
      <on_boot>true</on_boot>
    </nic_configuration>
    <nic_configuration>
      <name>eth1</name>
      <boot_protocol>dhcp</boot_protocol>
      <on_boot>true</on_boot>
    </nic_configuration>
  </nic_configurations>
</initialization>`;

async function shadowVerifies(facts: GuestFacts, user: string, password: string): Promise<boolean> {
  const hash = facts.shadow.split('\n').find((l) => l.startsWith(`${user}:`))?.split(':')[1] ?? '';
  const salt = /^\$6\$([^$]+)\$/.exec(hash)?.[1];
  if (salt === undefined) return false;
  const { stdout } = await execa('openssl', ['passwd', '-6', '-salt', salt, '--stdin'], { input: password });
  return stdout.trim() === hash;
}

function link(f: GuestFacts, mac: string) {
  const found = f.addresses.find((l) => l.address === mac);
  assert.ok(found, `the guest has a NIC with MAC ${mac}: ${JSON.stringify(f.addresses.map((l) => [l.ifname, l.address]))}`);
  return found;
}

const ipv4 = (f: GuestFacts, mac: string) =>
  link(f, mac)
    .addr_info.filter((a) => a.family === 'inet' && a.scope !== 'host')
    .map((a) => `${a.local}/${String(a.prefixlen)}`);

const target = LIBVIRT_TARGETS[0]!;
/** What the socket server gives each request; the handler reads none of it for these methods. */
const context = (id: number) => ({ id, peer: undefined, signal: new AbortController().signal });

describe(`A real Debian 12 guest configured from a NoCloud drive the daemon built (${target.title}, ${kvmUsable() ? 'KVM' : 'TCG'})`, function () {
  this.timeout(1_500_000);
  let lv: TestLibvirt;
  let hv: Hypervisor;
  let service: VmService;
  let agent: GuestAgent;
  let perform: ReturnType<typeof createHandler>;
  let spec: GuestSpec;
  let work = '';
  const boots = new Map<string, Boot>();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'e2e-nocloud-'));
    chmodSync(work, 0o711);
    const image = linkImage(await guestImage(), work);
    console.log(`      guest image: ${image.summary}`);
    lv = await target.open();
    hv = lv.hv;
    agent = await openGuestAgent(hv, join(work, 'state'));
    service = agent.service;
    perform = createHandler(service, agent.migrations, hv, createLogger({ level: 'error', write: () => undefined }), () => 'builtin', () => []);
    spec = { name: 'e2e-nocloud', macs: MACS, workDir: work };
    await createOverlay(image, spec);
    await hv.define(guestDomainXml(image, spec));
  });

  tearDownGuestSuite(
    () => work,
    async () => {
      await (agent as GuestAgent | undefined)?.close();
      await (lv as TestLibvirt | undefined)?.close();
    },
  );

  async function bootAs(label: string, start: () => Promise<DomainRef>): Promise<GuestFacts> {
    const b = await boot(hv, spec, start);
    keepBoot(work, label, b);
    boots.set(label, b);
    console.log(`      ${label}: report after ${b.seconds.toFixed(1)} s`);
    assert.equal(b.facts.error, undefined);
    return b.facts;
  }

  const plainStart = () => agent.plainStart(spec.name);

  it('VM.start with driveFormat nocloud: host name, root password and key, static address and DHCP by MAC, DNS, VM.initialized', async () => {
    const action = parseAction('VM.start', { domain: spec.name, initialization: SETTINGS, format: 'xml', driveFormat: 'nocloud' });
    let answer: { label: string; instanceId: string; verified: { label: string } } | undefined;
    const f = await bootAs('first boot', async () => {
      answer = (await perform(action, context(1))) as typeof answer;
      return hv.lookup(spec.name);
    });
    const dom = await hv.lookup(spec.name);
    assert.deepEqual([answer?.label, answer?.verified.label, answer?.instanceId], ['cidata', 'cidata', `${dom.uuid}-g1`]);
    assert.match(f.cloud_init_status.out, /status: done/, `${f.cloud_init_status.out}${f.cloud_init_status.err}`);
    assert.deepEqual(f.cloud_init_warnings, [], 'cloud-init logged no warnings');
    assert.equal(f.failed_units.trim(), '', 'no systemd unit failed');
    assert.ok(f.lifecycle_log.some((l) => /DataSourceNoCloud/.test(l)), `read by NoCloud: ${JSON.stringify(f.lifecycle_log)}`);
    assert.equal(f.instance_id, `${dom.uuid}-g1`, "the domain's first generation, as on config-2");
    assert.deepEqual(Object.values(f.cdroms).map((e) => /^LABEL=(.*)$/m.exec(e)?.[1]), ['cidata']);
    assert.equal(f.hostname, HOST);
    assert.ok(await shadowVerifies(f, 'root', ROOT_PASSWORD), "root's password works");
    assert.equal(await shadowVerifies(f, 'root', 'wrong'), false, 'the check can fail');
    assert.ok((f.authorized_keys.root ?? '').split('\n').includes(ROOT_KEY), `root's key: ${String(f.authorized_keys.root)}`);
    const [m0, m1] = MACS as [string, string];
    assert.equal(link(f, m0).ifname, 'eth0');
    assert.deepEqual(ipv4(f, m0), ['192.168.7.21/24']);
    assert.ok(f.routes4.some((r) => r.dst === 'default' && r.gateway === '192.168.7.1' && r.dev === 'eth0'), `static gateway: ${JSON.stringify(f.routes4)}`);
    assert.equal(link(f, m1).ifname, 'eth1');
    assert.match(ipv4(f, m1)[0] ?? '', /^10\.0\.2\.\d+\/24$/, "eth1 leased from QEMU's DHCP server");
    assert.match(f.resolv_conf ?? '', /^nameserver 192\.0\.2\.53$/m, f.resolv_conf ?? '');
    assert.match(f.resolv_conf ?? '', /^search .*\bnocloud\.test\b/m);
    const reports = agent.initialized.map((n) => n.params);
    assert.equal(reports.length, 1, `one VM.initialized: ${JSON.stringify(reports)}`);
    assert.equal(reports[0]!['status'], 'done', `the reporter from vendor-data: ${JSON.stringify(reports[0])}`);
  });

  it("the same drive again: the drive's pin makes ds-identify look for NoCloud, finds the cidata volume, nothing re-runs", async () => {
    const first = boots.get('first boot');
    assert.ok(first, 'the first boot ran');
    const f = await bootAs('second boot, same drive', plainStart);
    assert.match(f.cloud_init_status.out, /status: done/);
    assert.match(f.ds_identify_log ?? '', /DSLIST=ConfigDrive NoCloud/, f.ds_identify_log ?? '(no ds-identify.log)');
    assert.match(f.ds_identify_log ?? '', /check for 'NoCloud' returned found/);
    assert.ok(f.lifecycle_log.some((l) => /new=False/.test(l)), `the same instance: ${JSON.stringify(f.lifecycle_log)}`);
    assert.deepEqual(f.host_keys, first.facts.host_keys, 'host keys unchanged');
    assert.deepEqual(f.network_files, first.facts.network_files, 'network files unchanged');
    assert.equal(agent.initialized.length, 2, 'VM.initialized for the new boot too');
  });

  it('without the drive ds-identify disables cloud-init: the static address, host name and keys stay', async () => {
    const first = boots.get('first boot');
    assert.ok(first, 'the first boot ran');
    const detached = await perform(parseAction('Payload.detach', { domain: spec.name }), context(2));
    assert.ok((detached as { removed: unknown }).removed, 'the drive was attached until now');
    const f = await bootAs('third boot, no drive', plainStart);
    assert.deepEqual(Object.keys(f.cdroms), [], 'no CD-ROM in the guest');
    assert.match(f.ds_identify_log ?? '', /DSLIST=ConfigDrive NoCloud/);
    assert.match(f.ds_identify_log ?? '', /notfound=disabled/);
    assert.match(f.cloud_init_status.out, /status: disabled/, f.cloud_init_status.out);
    assert.equal(f.cloud_init_ran, false, 'cloud-init logged nothing this boot');
    assert.equal(f.instance_id, first.facts.instance_id, 'the same instance, not iid-datasource-none');
    assert.equal(f.hostname, HOST);
    assert.deepEqual(f.host_keys, first.facts.host_keys, 'host keys unchanged');
    assert.deepEqual(f.network_files, first.facts.network_files, 'no DHCP fallback written');
    assert.deepEqual(ipv4(f, MACS[0]!), ['192.168.7.21/24'], 'the static address is still there');
    assert.equal(agent.initialized.length, 2, 'a drive-less boot reports nothing');
  });
});

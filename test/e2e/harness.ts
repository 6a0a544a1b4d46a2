/**
 * The e2e harness: a real Debian guest (test/e2e/guest/build-image.sh) booted by real
 * QEMU through the agent's own libvirt connection, embedded or to a libvirt daemon. Each domain gets a copy-on-write
 * overlay of the cached image, its console on ttyS0 to a file and the guest's report on
 * ttyS1 to another file. The guest reports facts and powers off
 * (test/e2e/guest/report.py); the tests judge them. Its NICs are QEMU user-mode NICs, and
 * tools/run-e2e runs the suite in a network namespace of its own with no interface but
 * loopback, so nothing a guest sends can leave this machine.
 */
import { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { domainType } from '../../src/libvirt/embed.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import type { DomainRef } from '../../src/vm/ports.js';

/** dist/test/e2e/ -> the project. */
const projectRoot = () => resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The Debian suites the guest matrix boots (issue 13); bookworm runs the full suite. */
export const GUEST_SUITES = ['bullseye', 'bookworm', 'trixie', 'forky'] as const;
export type GuestSuite = (typeof GUEST_SUITES)[number];

export interface GuestImage {
  readonly suite: GuestSuite;
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly root: string;
  /** `ssh_host_*_key.pub` name to content, as the image was built. */
  readonly hostKeys: ReadonlyMap<string, string>;
  /** The builder's summary: build time and sizes. */
  readonly summary: string;
}

/** Builds the image unless cached (tools/run-e2e usually did already); its progress goes to stderr. */
export async function guestImage(suite: GuestSuite = 'bookworm'): Promise<GuestImage> {
  const script = join(projectRoot(), 'test/e2e/guest/build-image.sh');
  const { stdout } = await execa('bash', [script, suite], { stderr: 'inherit' });
  const dir = stdout.trim().split('\n').at(-1) ?? '';
  const keysDir = join(dir, 'image-host-keys');
  return {
    suite,
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    root: join(dir, 'root.img'),
    hostKeys: new Map(readdirSync(keysDir).map((f) => [f, readFileSync(join(keysDir, f), 'utf8').trim()])),
    summary: readFileSync(join(dir, 'done'), 'utf8').trim(),
  };
}

/**
 * The image as a domain may use it: hard links in `dir`, which QEMU can reach. Under a
 * libvirt daemon QEMU runs as its own user, and the cache is in root's home (0700); a
 * link needs no copy of the 1 GB root file system. Copied when `dir` is on another file
 * system.
 */
export function linkImage(image: GuestImage, dir: string): GuestImage {
  const place = (path: string) => {
    const target = join(dir, `image-${image.suite}-${basename(path)}`);
    try {
      linkSync(path, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      copyFileSync(path, target);
    }
    return target;
  };
  return { ...image, kernel: place(image.kernel), initrd: place(image.initrd), root: place(image.root) };
}

export interface GuestSpec {
  readonly name: string;
  /** One user-mode virtio NIC per MAC, in this order. */
  readonly macs: readonly string[];
  /** Files the guest reports the content of (passed on the kernel command line). */
  readonly paths?: readonly string[];
  /** Extra `<disk>` elements, e.g. an install CD. */
  readonly disksXml?: string;
  readonly workDir: string;
}

export const consoleLog = (spec: GuestSpec) => join(spec.workDir, `${spec.name}-console.log`);
export const reportLog = (spec: GuestSpec) => join(spec.workDir, `${spec.name}-report.log`);
const overlay = (spec: GuestSpec) => join(spec.workDir, `${spec.name}-root.qcow2`);

/** The domain's root disk: a qcow2 overlay whose writes never reach the cached image. */
export async function createOverlay(image: GuestImage, spec: GuestSpec): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', resolve(image.root), overlay(spec)]);
}

/**
 * i440fx, so CD-ROMs are IDE (the guest's cloud kernel has ata_piix but no AHCI); ACPI,
 * so the guest's poweroff ends the domain; direct kernel boot, so no boot loader.
 */
export function guestDomainXml(image: GuestImage, spec: GuestSpec): string {
  const cmdline = ['root=/dev/vda', 'rw', 'console=ttyS0', 'quiet'];
  if (spec.paths !== undefined && spec.paths.length > 0) cmdline.push(`configdrive_e2e.paths=${spec.paths.join(',')}`);
  return `<domain type='${domainType()}'>
  <name>${spec.name}</name>
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${image.kernel}</kernel>
    <initrd>${image.initrd}</initrd>
    <cmdline>${cmdline.join(' ')}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${overlay(spec)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    ${spec.disksXml ?? ''}
    ${spec.macs.map((m) => `<interface type='user'><mac address='${m}'/><model type='virtio'/></interface>`).join('\n    ')}
    <serial type='file'><source path='${consoleLog(spec)}'/><target port='0'/></serial>
    <serial type='file'><source path='${reportLog(spec)}'/><target port='1'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
}

/** What test/e2e/guest/report.py sends; see there for how each is read. */
export interface GuestFacts {
  readonly error?: string;
  readonly boot_id: string;
  readonly cmdline: string;
  readonly hostname: string;
  readonly etc_hostname: string;
  readonly etc_hosts: string | null;
  readonly passwd: string;
  readonly shadow: string;
  readonly group: string;
  readonly authorized_keys: Record<string, string | null>;
  readonly host_keys: Record<string, string>;
  readonly timezone: string;
  readonly localtime: string;
  readonly resolv_conf: string | null;
  /** Where /etc/resolv.conf leads (systemd-resolved's stub, or itself). */
  readonly resolv_conf_target: string;
  /** systemd-resolved's upstream servers and search domains, when it runs. */
  readonly resolved_upstream: string | null;
  readonly os_release: string | null;
  readonly default_locale: string | null;
  readonly locale_conf: string | null;
  readonly cloud_init_version: string;
  readonly python_version: string;
  /** cloud-init.log's "Selected renderer" lines this boot. */
  readonly renderer_log: readonly string[];
  readonly addresses: readonly GuestLink[];
  readonly routes4: readonly { dst: string; gateway?: string; dev: string }[];
  readonly routes6: readonly { dst: string; gateway?: string; dev: string }[];
  readonly block: { blockdevices?: readonly { name: string; type: string; label: string | null; fstype: string | null }[] };
  readonly cdroms: Record<string, string>;
  readonly paths: Record<string, { content: string | null; mode: string | null }>;
  readonly cloud_init_status: { rc: number; out: string; err: string };
  readonly cloud_init_result: string | null;
  readonly instance_id: string;
  /** cloud-init logged something this boot (it did not, when ds-identify disabled it). */
  readonly cloud_init_ran: boolean;
  /** This boot's cloud-init.log lines about the instance and datasource. */
  readonly lifecycle_log: readonly string[];
  readonly ds_identify_log: string | null;
  readonly generator_log: string | null;
  /** Each network renderer file and rename rule in the guest, with its sha256. */
  readonly network_files: Record<string, string>;
  readonly cloud_init_warnings: readonly string[];
  readonly metadata_urls_tried: number;
  readonly cloud_final_done_us: number | null;
  readonly failed_units: string;
  readonly uptime_s: number;
  /** Guest uptime when the reporter began, and how long it took, with its slow parts. */
  readonly reporter_started_s: number;
  readonly reporter_s: number;
  readonly reporter_timings: Record<string, number>;
}

export interface GuestLink {
  readonly ifname: string;
  readonly address?: string;
  readonly operstate?: string;
  readonly addr_info: readonly { family: string; local: string; prefixlen: number; scope: string; dynamic?: boolean }[];
}

export interface Boot {
  readonly facts: GuestFacts;
  /** Host clock, from the start request to the report line. */
  readonly seconds: number;
  readonly console: string;
}

const MARK = 'CONFIGDRIVE-E2E-REPORT ';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reports whose whole line is in the file (the guest may still be writing the last), in order. */
function readReports(spec: GuestSpec): GuestFacts[] {
  if (!existsSync(reportLog(spec))) return [];
  const text = readFileSync(reportLog(spec), 'utf8');
  const reports: GuestFacts[] = [];
  for (let at = text.indexOf(MARK); at >= 0; at = text.indexOf(MARK, at + MARK.length)) {
    const end = text.indexOf('\n', at);
    if (end < 0) break;
    reports.push(JSON.parse(Buffer.from(text.slice(at + MARK.length, end).trim(), 'base64').toString('utf8')) as GuestFacts);
  }
  return reports;
}

/**
 * Runs `start` (whatever starts the domain: the agent's VM.start or a plain start), then
 * waits for the guest's report and for the domain to shut off. On a timeout the domain is
 * destroyed and the error carries the console's tail, which is where a guest says why.
 */
export async function boot(hv: Hypervisor, spec: GuestSpec, start: () => Promise<DomainRef>, timeoutMs = 600_000): Promise<Boot> {
  const [only] = await bootsOfOneRun(hv, spec, start, 1, async () => undefined, timeoutMs);
  return only!;
}

/**
 * One run of QEMU in which the guest reboots itself once (test/e2e/guest/report.py does
 * when its drive asks it to, on seeing a new drive): `between` runs after the first
 * report, while the guest waits; then both boots, once the domain has shut off.
 */
export async function bootAcrossReboot(hv: Hypervisor, spec: GuestSpec, start: () => Promise<DomainRef>, between: (first: Boot) => Promise<void>, timeoutMs = 900_000): Promise<readonly [Boot, Boot]> {
  const [first, second] = await bootsOfOneRun(hv, spec, start, 2, between, timeoutMs);
  return [first!, second!];
}

async function bootsOfOneRun(hv: Hypervisor, spec: GuestSpec, start: () => Promise<DomainRef>, count: number, between: (first: Boot) => Promise<void>, timeoutMs: number): Promise<Boot[]> {
  const begun = performance.now();
  const dom = await start();
  const seconds: number[] = [];
  const consoleText = () => readFileSync(consoleLog(spec), 'utf8');
  const boots = (facts: readonly GuestFacts[]) => facts.map((f, i) => ({ facts: f, seconds: seconds[i]!, console: consoleText() }));
  try {
    while (performance.now() - begun < timeoutMs) {
      const facts = readReports(spec).slice(0, count);
      while (seconds.length < facts.length) {
        seconds.push((performance.now() - begun) / 1000);
        if (seconds.length === 1 && count > 1) await between(boots(facts)[0]!);
      }
      if (facts.length === count && (await hv.state(dom)) === 'shutoff') return boots(facts);
      await sleep(500);
    }
  } catch (err) {
    await hv.destroy(dom).catch(() => undefined);
    throw err;
  }
  await hv.destroy(dom).catch(() => undefined);
  const tail = existsSync(consoleLog(spec)) ? consoleText().split('\n').slice(-40).join('\n') : '(no console output)';
  throw new Error(`${spec.name}: ${String(seconds.length)} of ${String(count)} reports and no power-off within ${String(timeoutMs / 1000)} s; console tail:\n${tail}`);
}

/** A boot's console and facts, kept in the suite's work directory under `label`. */
export function keepBoot(work: string, label: string, b: Boot): void {
  writeFileSync(join(work, `${label}-console.log`), b.console);
  writeFileSync(join(work, `${label}.json`), JSON.stringify(b.facts, null, 2));
}

/**
 * The teardown every guest suite has, registered in its describe(): after the tests,
 * `close` (whatever before() got to open), then the work directory is removed, or kept
 * and named when a test failed, with each boot's console and facts for whoever has to
 * find out why.
 */
export function tearDownGuestSuite(work: () => string, close: () => Promise<void>): void {
  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async () => {
    await close();
    if (failed) console.log(`      kept for inspection: ${work()}`);
    else rmSync(work(), { recursive: true, force: true });
  });
}

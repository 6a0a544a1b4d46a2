/**
 * The operator's journey under a real systemd (docs/system-journey.md): the Debian
 * package from `npm run package` installed in a Debian 12 container whose PID 1 is
 * systemd, then used the way an operator would: socket activation, Type=notify
 * readiness, the socket's group deciding who may connect, `systemctl reload`, a drain on
 * `systemctl stop`, the journal, VM.start against the container's own libvirtd with the
 * unit's hardening in place, and the unit's exposure score. Steps share one container and
 * run in order; each is timed. Run by tools/run-journey, which provides the root
 * (CONFIGDRIVE_JOURNEY_ROOT) and the package (CONFIGDRIVE_JOURNEY_DEB).
 */
import assert from 'node:assert/strict';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Container, type Background } from './container.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOCKET = '/run/configdrived/configdrived.sock';
/** Where the journey puts its files inside the container. */
const WORK = '/var/tmp/journey';
const UNIT = 'configdrived.service';
/**
 * `systemd-analyze security` of the shipped unit, measured after its hardening
 * (docs/system-journey.md lists each directive): a change that loosens it fails here.
 */
const MAX_EXPOSURE = 1.2;

interface JournalEntry {
  readonly MESSAGE?: string;
  readonly PRIORITY?: string;
  readonly _SYSTEMD_UNIT?: string;
  readonly _TRANSPORT?: string;
  readonly __CURSOR: string;
}

interface RpcReply {
  readonly id: string | number | null;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: { code?: string } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await sleep(100);
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set: run the journey with 'bash tools/run-journey'`);
  return value;
}

describe('The operator’s journey: the Debian package under systemd in a Debian 12 container', function () {
  let c: Container | undefined;
  const times: { step: string; ms: number; state: string }[] = [];
  const started = performance.now();
  /** Requests that reached the daemon's handler: each must leave exactly one journal line. */
  let requestsSent = 0;
  let debName = '';

  const box = (): Container => {
    assert.ok(c, 'the container did not boot');
    return c;
  };

  async function show(unit: string, props: readonly string[]): Promise<Record<string, string>> {
    const out = await box().run(['systemctl', 'show', '-p', props.join(','), unit]);
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  async function journal(afterCursor?: string): Promise<JournalEntry[]> {
    const out = await box().run(['journalctl', '-u', UNIT, '-o', 'json', '--no-pager', ...(afterCursor === undefined ? [] : [`--after-cursor=${afterCursor}`])]);
    return out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as JournalEntry);
  }

  /** What the daemon itself wrote (not systemd's messages about the unit). */
  const daemonLines = (entries: readonly JournalEntry[]) => entries.filter((e) => e._SYSTEMD_UNIT === UNIT && e._TRANSPORT === 'stdout');

  async function lastCursor(): Promise<string> {
    return (await journal()).at(-1)?.__CURSOR ?? '';
  }

  async function caps(user?: string) {
    const r = await box().exec(['configdrive', 'caps', '--json'], user === undefined ? {} : { user });
    if (r.exitCode === 0) requestsSent++;
    return r;
  }

  async function daemonLog(): Promise<string> {
    return (await box().exec(['journalctl', '-u', UNIT, '-n', '40', '--no-pager'])).stdout;
  }

  /** One raw request line through test/system/probe.ts; counts it unless the frame limit refused it. */
  async function probe(request: Record<string, unknown>, padding?: number): Promise<RpcReply> {
    const args = ['node', `${WORK}/probe.mjs`, SOCKET, JSON.stringify({ jsonrpc: '2.0', ...request }), ...(padding === undefined ? [] : [String(padding)])];
    const out = await box().run(args);
    const reply = JSON.parse(out.split('\n').filter((l) => l !== '' && l !== 'sent').at(-1) ?? '') as RpcReply;
    if (!overFrameLimit(reply)) requestsSent++;
    return reply;
  }
  // Refused before parsing: never a request line in the journal (its id may or may not be recovered).
  const overFrameLimit = (r: RpcReply) => r.error?.data?.code === 'INVALID_REQUEST' && /byte limit/.test(r.error.message);

  before(function () {
    this.timeout(10_000);
    debName = basename(required('CONFIGDRIVE_JOURNEY_DEB'));
    required('CONFIGDRIVE_JOURNEY_ROOT');
  });

  afterEach(async function () {
    const t = this.currentTest;
    if (t === undefined) return;
    times.push({ step: t.title, ms: t.duration ?? 0, state: t.state ?? 'unknown' });
    console.log(`      step time: ${((t.duration ?? 0) / 1000).toFixed(1)} s`);
    if (t.state === 'failed' && c !== undefined) console.log(`      configdrived's journal at the failure:\n${(await daemonLog()).replace(/^/gm, '        ')}`);
  });

  after(async function () {
    this.timeout(120_000);
    if (c !== undefined) {
      const down = await c.shutdown(60_000);
      times.push({ step: `container shut down${down.clean ? '' : ' (killed: poweroff took over 60 s)'} and its overlay removed`, ms: down.ms, state: down.clean ? 'passed' : 'failed' });
    }
    console.log('\n  journey steps:');
    for (const t of times) console.log(`    ${(t.ms / 1000).toFixed(1).padStart(6)} s  ${t.state === 'passed' ? ' ' : '✗'} ${t.step}`);
    console.log(`    ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s    journey total`);
  });

  it('boots Debian 12 with systemd as PID 1 in an nspawn container', async function () {
    this.timeout(240_000);
    c = await Container.boot(required('CONFIGDRIVE_JOURNEY_ROOT'), 180_000);
    assert.equal((await c.run(['cat', '/proc/1/comm'])).trim(), 'systemd');
    assert.match(await c.run(['cat', '/etc/os-release']), /^VERSION_ID="12"$/m);
    const state = (await c.exec(['systemctl', 'is-system-running'])).stdout.trim();
    const failed = (await c.run(['systemctl', '--failed', '--plain', '--no-legend', '--no-pager'])).trim();
    console.log(`      booted to '${state}' in ${(c.bootMs / 1000).toFixed(1)} s${failed === '' ? '' : `; failed units: ${failed}`}`);
    assert.equal(failed, '', 'no unit of the container failed at boot');
    assert.equal((await c.run(['systemctl', 'is-active', 'libvirtd.socket'])).trim(), 'active');
  });

  it('installs the package with dpkg -i, its dependencies already satisfied', async function () {
    this.timeout(180_000);
    const deb = `${WORK}/${debName}`;
    box().copyIn(join(HERE, 'probe.js'), `${WORK}/probe.mjs`);
    box().copyIn(required('CONFIGDRIVE_JOURNEY_DEB'), deb);
    const depends = (await box().run(['dpkg-deb', '--field', deb, 'Depends'])).trim();
    console.log(`      ${debName}: Depends: ${depends}`);
    const simulated = await box().run(['apt-get', '-s', 'install', deb]);
    const installs = simulated.split('\n').filter((l) => l.startsWith('Inst '));
    assert.deepEqual(installs.map((l) => l.split(' ')[1]), ['configdrive-agent'], `apt would install only the package itself:\n${simulated}`);
    await box().run(['dpkg', '-i', deb], { timeoutMs: 150_000 });
    assert.match(await box().run(['dpkg-query', '-W', '-f=${Status}', 'configdrive-agent']), /^install ok installed$/);
    for (const f of ['/usr/bin/configdrive', '/usr/bin/configdrived']) await box().run(['test', '-x', f]);
    await box().run(['test', '-f', '/etc/configdrived/configdrived.yaml']);
    assert.match(await box().run(['getent', 'group', 'configdrive']), /^configdrive:x:\d+:/, 'the package created the group configdrive');
    assert.equal((await box().run(['systemctl', 'is-enabled', 'configdrived.socket'])).trim(), 'enabled', 'postinst enabled the socket');
    const service = (await box().exec(['systemctl', 'is-enabled', UNIT])).stdout.trim();
    assert.notEqual(service, 'enabled', 'the service itself is not enabled: the socket starts it');
    await box().run(['usermod', '--append', '--groups', 'configdrive', 'operator']);
    assert.match(await box().run(['id', '-nG', 'operator']), /\bconfigdrive\b/);
  });

  it('listens on the socket (root:configdrive 0660) with the service still inactive', async function () {
    this.timeout(60_000);
    await box().run(['systemctl', 'start', 'configdrived.socket']);
    assert.equal((await box().run(['systemctl', 'is-active', 'configdrived.socket'])).trim(), 'active');
    assert.equal((await show(UNIT, ['ActiveState'])).ActiveState, 'inactive', 'nothing has connected yet');
    assert.equal((await box().run(['stat', '-c', '%F %a %U %G', SOCKET])).trim(), 'socket 660 root configdrive');
    // access(2) walks the path as the user would: the directory must let the group through too.
    assert.equal((await box().exec(['test', '-w', SOCKET], { user: 'operator' })).exitCode, 0, `operator (group configdrive) may open ${SOCKET}; ${await box().run(['stat', '-c', '%n %A %U %G', dirname(SOCKET), SOCKET])}`);
    assert.equal((await box().exec(['test', '-w', SOCKET], { user: 'stranger' })).exitCode, 1, 'stranger may not');
    assert.equal((await show(UNIT, ['ActiveState'])).ActiveState, 'inactive', 'checking permissions activated nothing');
  });

  it('activates the service on the first request (configdrive caps as root), Type=notify reaching active', async function () {
    this.timeout(60_000);
    const r = await caps();
    assert.equal(r.exitCode, 0, `configdrive caps: ${r.stderr}`);
    const answer = JSON.parse(r.stdout) as { agent: { version: string }; libvirt: { uri: string; library: string; hypervisor: string } };
    assert.equal(answer.libvirt.uri, 'qemu:///system');
    assert.match(answer.libvirt.hypervisor, /^\d+\.\d+/, "the container's libvirtd answered with QEMU's version");
    // The socket is served before READY=1 is sent, so the answer can precede `active` by a moment.
    const s = await waitFor('configdrived.service to become active', 10_000, async () => {
      const p = await show(UNIT, ['ActiveState', 'SubState', 'Type', 'MainPID', 'NRestarts']);
      return p['ActiveState'] === 'active' ? p : undefined;
    });
    console.log(`      ${JSON.stringify(s)}; agent ${answer.agent.version}, libvirt ${answer.libvirt.library}, QEMU ${answer.libvirt.hypervisor}`);
    assert.equal(s['Type'], 'notify');
    assert.equal(s['SubState'], 'running');
    assert.ok(Number(s['MainPID']) > 0);
    assert.equal(s['NRestarts'], '0');
    const ready = daemonLines(await journal()).find((e) => e.MESSAGE?.startsWith('ready '));
    assert.ok(ready, 'the daemon logged that it is ready');
    assert.match(ready.MESSAGE ?? '', /socket="?systemd \(fd 3\)/, 'it serves the socket systemd handed over');
  });

  it('serves operator, a member of the socket’s group', async function () {
    this.timeout(30_000);
    const r = await caps('operator');
    assert.equal(r.exitCode, 0, `configdrive caps as operator: ${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { agent: { name: string } }).agent.name, 'configdrive-agent');
  });

  it('refuses stranger, who is not in the group: exit status 1 and a message naming the socket', async function () {
    this.timeout(30_000);
    const before = (await show(UNIT, ['MainPID'])).MainPID;
    const r = await box().exec(['configdrive', 'caps'], { user: 'stranger' });
    assert.equal(r.exitCode, 1, `stranger's exit status (stdout: ${r.stdout})`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`${SOCKET.replace(/\./g, '\\.')}.*EACCES.*\\[IO_ERROR\\]`), 'one line: the socket, permission denied, the code');
    console.log(`      stranger sees: ${r.stderr.trim()}`);
    assert.equal((await show(UNIT, ['MainPID'])).MainPID, before, 'the daemon kept running');
  });

  it('systemctl reload re-reads the configuration; a flag given at start survives it', async function () {
    this.timeout(120_000);
    // The flag: the unit's own command line plus --log-level info, through a drop-in.
    const execStart = (await box().run(['systemctl', 'show', '-p', 'ExecStart', '--value', UNIT])).trim();
    const argv = /argv\[\]=([^;]+) ;/.exec(execStart)?.[1]?.trim();
    assert.ok(argv, `ExecStart as systemd shows it: ${execStart}`);
    box().writeFile(`/etc/systemd/system/${UNIT}.d/50-journey.conf`, `[Service]\nExecStart=\nExecStart=${argv} --log-level info\n`);
    await box().run(['systemctl', 'daemon-reload']);
    await box().run(['systemctl', 'restart', UNIT]);
    const pid = (await show(UNIT, ['MainPID'])).MainPID ?? '';
    const cmdline = (await box().run(['cat', `/proc/${pid}/cmdline`])).split('\0');
    assert.deepEqual(cmdline.slice(-3, -1), ['--log-level', 'info'], `the daemon runs with the flag: ${cmdline.join(' ')}`);

    const big = 100_000;
    const before = await probe({ id: 'frame-before', method: 'Host.getCapabilities', params: {} }, big);
    assert.notEqual(before.error?.data?.code, 'INVALID_REQUEST', `a ${String(big)}-byte line is within the default limit: ${JSON.stringify(before.error)}`);

    // The file says warning, the command line info: after the reload the flag must still win.
    box().writeFile('/etc/configdrived/configdrived.yaml.d/50-journey.yaml', 'maxFrameBytes: 65536\nlogLevel: warning\n');
    let cursor = await lastCursor();
    await box().run(['systemctl', 'reload', UNIT]);
    // Its confirmation is an info line, which the file's level would hide: give up waiting after 5 s.
    await waitFor('the reload to be logged', 5_000, async () => daemonLines(await journal(cursor)).find((e) => /^(configuration reloaded|reload failed)/.test(e.MESSAGE ?? ''))).catch(() => undefined);
    const after = await probe({ id: 'frame-after', method: 'Host.getCapabilities', params: {} }, big);
    assert.ok(overFrameLimit(after), `maxFrameBytes from the drop-in took effect: ${JSON.stringify(after)}`);
    assert.match(after.error?.message ?? '', /65536-byte limit/);
    assert.equal((await show(UNIT, ['MainPID'])).MainPID, pid, 'a reload, not a restart');
    cursor = await lastCursor();
    assert.equal((await caps('operator')).exitCode, 0);
    const logged = await waitFor('the request line of a caps call after the reload', 5_000, async () => daemonLines(await journal(cursor)).find((e) => e.MESSAGE?.startsWith('request '))).catch(() => undefined);
    assert.ok(logged, 'requests are still logged at info: the command line’s --log-level info survived the reload of a file saying warning');

    // A broken drop-in: the reload fails loudly and the running configuration stays.
    box().writeFile('/etc/configdrived/configdrived.yaml.d/60-broken.yaml', 'maxFrameBytes: lots\n');
    cursor = await lastCursor();
    await box().run(['systemctl', 'reload', UNIT]);
    const failure = await waitFor('the failed reload in the journal', 10_000, async () => daemonLines(await journal(cursor)).find((e) => e.MESSAGE?.startsWith('reload failed')));
    assert.equal(failure.PRIORITY, '3', 'logged at error priority');
    assert.match(failure.MESSAGE ?? '', /60-broken\.yaml/, 'naming the file');
    assert.ok(overFrameLimit(await probe({ id: 'frame-kept', method: 'Host.getCapabilities', params: {} }, big)), 'the limit from before the failed reload still holds');
    await box().run(['rm', '/etc/configdrived/configdrived.yaml.d/60-broken.yaml']);
  });

  it('starts a VM (VM.start as operator) on the container’s libvirtd with the unit’s hardening in place', async function () {
    this.timeout(180_000);
    box().writeFile(`${WORK}/journey-vm.xml`, tinyDomain('journey-vm'));
    box().writeFile(`${WORK}/journey-vm.yaml`, 'configdrive: 1\nhostname: journey-vm\ntimezone: Europe/Prague\n');
    await box().run(['virsh', '-c', 'qemu:///system', 'define', `${WORK}/journey-vm.xml`]);
    const r = await box().exec(['configdrive', 'start', 'journey-vm', `${WORK}/journey-vm.yaml`, '--json'], { user: 'operator', timeoutMs: 150_000 });
    if (r.exitCode === 0) requestsSent++;
    else {
      // An error code from the daemon means the request reached it (IO_ERROR is the client's own).
      if (/\[(?!IO_ERROR)[A-Z_]+\]\s*$/.test(r.stderr)) requestsSent++;
      const libvirtd = (await box().exec(['journalctl', '-u', 'libvirtd', '-n', '20', '--no-pager'])).stdout;
      const qemuLog = (await box().exec(['tail', '-n', '20', '/var/log/libvirt/qemu/journey-vm.log'])).stdout;
      assert.fail(`configdrive start exited ${String(r.exitCode)}: ${r.stderr}\nlibvirtd:\n${libvirtd}\nQEMU's log:\n${qemuLog}`);
    }
    try {
      const v = JSON.parse(r.stdout) as { path: string; verified: { label: string; files: number; liveSource: boolean } };
      assert.equal(v.verified.label, 'config-2');
      assert.ok(v.verified.liveSource, 'the running domain shows the drive');
      assert.ok(v.path.startsWith('/var/lib/configdrived/'), v.path);
      assert.equal((await box().run(['virsh', '-c', 'qemu:///system', 'domstate', 'journey-vm'])).trim(), 'running');
      assert.ok((await box().run(['virsh', '-c', 'qemu:///system', 'dumpxml', 'journey-vm'])).includes(v.path), 'the live XML has the drive');
      const qemuPid = (await box().run(['cat', '/run/libvirt/qemu/journey-vm.pid'])).trim();
      const qemuUser = (await box().run(['stat', '-c', '%U', `/proc/${qemuPid}`])).trim();
      const image = (await box().run(['stat', '-c', '%a %U %G', v.path])).trim();
      console.log(`      QEMU runs as ${qemuUser}; drive ${v.path}: ${image}; ${String(v.verified.files)} files read back`);
      assert.equal(qemuUser, 'libvirt-qemu', 'QEMU runs as its own user, not root');
      assert.match(image, /^640 root libvirt-qemu$/, 'the image is readable by QEMU’s group only');
    } finally {
      await box().exec(['virsh', '-c', 'qemu:///system', 'destroy', 'journey-vm']);
    }
  });

  it('drains on systemctl stop: a request in flight completes, then the daemon exits 0', async function () {
    this.timeout(120_000);
    box().writeFile(`${WORK}/journey-drain.xml`, tinyDomain('journey-drain'));
    await box().run(['virsh', '-c', 'qemu:///system', 'define', `${WORK}/journey-drain.xml`]);
    const cursor = await lastCursor();
    // A frozen libvirtd holds the request in flight for as long as the test needs. It is
    // socket-activated and leaves when idle: make sure there is a process to freeze.
    await box().run(['systemctl', 'start', 'libvirtd.service']);
    await box().run(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGSTOP', 'libvirtd.service']);
    let inFlight: Background | undefined;
    let out = '';
    try {
      const request = { jsonrpc: '2.0', id: 'drain-1', method: 'Payload.attach', params: { domain: 'journey-drain', initialization: 'configdrive: 1\nhostname: journey-drain\n', format: 'yaml' } };
      inFlight = box().spawn(['node', `${WORK}/probe.mjs`, SOCKET, JSON.stringify(request)]);
      inFlight.stdout.on('data', (chunk: Buffer | string) => (out += chunk.toString()));
      await waitFor('the probe to send its request', 10_000, async () => (out.includes('sent') ? true : undefined));
      await sleep(500);
      await box().run(['systemctl', 'stop', '--no-block', UNIT]);
      await waitFor('configdrived.service to start stopping', 10_000, async () => ((await show(UNIT, ['ActiveState'])).ActiveState === 'deactivating' ? true : undefined));
      await sleep(1_000);
      assert.equal((await show(UNIT, ['ActiveState'])).ActiveState, 'deactivating', 'the daemon waits for the request in flight');
      assert.equal(out.trim(), 'sent', 'and the request has not been answered yet');
    } finally {
      await box().run(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGCONT', 'libvirtd.service']);
    }
    assert.ok(inFlight);
    const done = await inFlight.result;
    const reply = JSON.parse(out.split('\n').filter((l) => l !== '' && l !== 'sent').at(-1) ?? '{}') as RpcReply;
    requestsSent++;
    assert.equal(done.exitCode, 0, `the probe got a reply: ${done.stderr}`);
    assert.equal(reply.id, 'drain-1', `the probe's output: ${out}`);
    assert.ok(reply.result !== undefined, `the request in flight completed: ${JSON.stringify(reply.error)}`);
    const s = await waitFor('configdrived.service to stop', 40_000, async () => {
      const p = await show(UNIT, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
      return p['ActiveState'] === 'inactive' || p['ActiveState'] === 'failed' ? p : undefined;
    });
    assert.deepEqual(s, { ActiveState: 'inactive', Result: 'success', ExecMainCode: '1', ExecMainStatus: '0' }, 'exited by itself with status 0');
    const messages = daemonLines(await journal(cursor)).map((e) => e.MESSAGE ?? '');
    const at = (re: RegExp) => messages.findIndex((m) => re.test(m));
    const stopping = at(/^stopping signal=SIGTERM/);
    const request = at(/^request id=drain-1 method=Payload\.attach .*outcome=ok/);
    const stopped = at(/^stopped/);
    assert.ok(stopping >= 0 && request > stopping && stopped > request, `stopping, then the request's line, then stopped:\n${messages.join('\n')}`);
    assert.equal((await box().run(['systemctl', 'is-active', 'configdrived.socket'])).trim(), 'active', 'the socket stays, ready to start the daemon again');
  });

  it('journals one line per request, with journald priorities from the daemon’s prefixes', async function () {
    this.timeout(30_000);
    const lines = daemonLines(await journal());
    const requests = lines.filter((e) => e.MESSAGE?.startsWith('request '));
    for (const e of requests) console.log(`      <${e.PRIORITY ?? '?'}> ${e.MESSAGE ?? ''}`);
    assert.equal(requests.length, requestsSent, 'one line for each request that reached the daemon');
    for (const e of requests) {
      assert.match(e.MESSAGE ?? '', /^request id=\S+ method=\S+ .*peer="uid:\d+,pid:\d+" ms=[\d.]+ outcome=\S+$/);
      // Expected failures (a bad request, a domain not found) are info; only the unexpected are errors.
      assert.ok(e.PRIORITY === '6' || (e.PRIORITY === '3' && !/outcome=ok$/.test(e.MESSAGE ?? '')), `${e.PRIORITY ?? '-'} ${e.MESSAGE ?? ''}`);
    }
    assert.ok(requests.some((e) => /peer="uid:1000,/.test(e.MESSAGE ?? '')), 'operator’s requests are logged with its uid');
    assert.ok(requests.some((e) => /peer="uid:0,/.test(e.MESSAGE ?? '')), 'and root’s with 0');
    assert.ok(!lines.some((e) => /^<\d>/.test(e.MESSAGE ?? '')), 'journald consumed every priority prefix');
    const priorities = new Set(lines.map((e) => e.PRIORITY));
    assert.ok(priorities.has('6') && priorities.has('3'), `info and error lines both reach the journal with their own priority: ${[...priorities].join(',')}`);
  });

  it('prints systemd-analyze security’s exposure score for the unit, within the bound', async function () {
    this.timeout(60_000);
    const out = await box().run(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const score = /Overall exposure level for configdrived\.service: (\d+\.\d+) (\S+)/.exec(out);
    assert.ok(score, out);
    const open = out.split('\n').filter((l) => l.startsWith('✗'));
    console.log(`      exposure ${score[1]!} ${score[2]!}; what remains exposed:\n${open.map((l) => `        ${l.replace(/\s+/g, ' ')}`).join('\n')}`);
    assert.ok(Number(score[1]) <= MAX_EXPOSURE, `exposure ${score[1]!} is above ${String(MAX_EXPOSURE)}`);
  });
});

/** The smallest domain QEMU starts without a guest OS: the firmware alone runs. TCG: no /dev/kvm in the container. */
function tinyDomain(name: string): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

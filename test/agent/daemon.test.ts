/**
 * The real configdrived process: systemd units verified, socket activation and
 * readiness through systemd's own tools, VM.start over the socket on real QEMU, and a
 * SIGKILL in the middle of attaches followed by a restart that leaves everything
 * consistent.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RELOADABLE_KEYS, type Config, type ReloadableKey } from '../../src/config/config.js';
import type { AgentError } from '../../src/errors.js';
import { embedUri, prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { RpcClient } from '../../src/rpc/client.js';
import { describeDomain } from '../../src/vm/domain-xml.js';
import { DEBIAN_PYTHON } from '../helpers/tools.js';
import { domainXml } from '../helpers/libvirt.js';
import { startPrivateLibvirtd } from '../helpers/private-libvirtd.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DAEMON = resolve(HERE, '../../agent/configdrived.js');
const UNITS = resolve(HERE, '../../../systemd');
const SEED_XML = readFileSync(resolve(HERE, '../../../test/fixtures/seed/initialization.xml'), 'utf8');
const MACS = ['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:03'];

function startDaemon(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe', { file: '/dev/null' }, { file: '/dev/null' }], reject: false, env });
}

async function connect(path: string, timeoutMs = 60_000): Promise<RpcClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await RpcClient.connect(path);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const O_CLOEXEC = 0o2000000;

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** State and parent from /proc/PID/stat, or undefined once the process is gone. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const [state, ppid] = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Alive: not gone, and not a zombie waiting for whoever adopted it to reap it. */
const running = (pid: number) => (procStat(pid)?.state ?? 'Z') !== 'Z';

const childrenOf = (pid: number) => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && procStat(Number(p))?.ppid === pid).map(Number);

/** Waits up to 10 s for `pattern` in the log after its first `from` characters. */
async function waitForLog(log: () => string, pattern: RegExp, from = 0): Promise<void> {
  for (let i = 0; i < 200 && !pattern.test(log().slice(from)); i++) await sleep(50);
  assert.match(log().slice(from), pattern);
}

/** What the daemon sends on a connection of its own, after `send`: up to `count` lines, and whether it closed the connection. */
async function exchange(path: string, send: string | undefined, count: number, timeoutMs = 5000): Promise<{ lines: Record<string, unknown>[]; closed: boolean }> {
  const socket = createConnection(path);
  let text = '';
  let closed = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.once('error', reject);
    socket.once('connect', () => send !== undefined && socket.write(send));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.split('\n').length > count) done();
    });
    socket.once('end', () => {
      closed = true;
      done();
    });
  });
  socket.destroy();
  return { lines: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>), closed };
}

const request = (id: number, method: string, extra: Record<string, unknown> = {}) => `${JSON.stringify({ jsonrpc: '2.0', id, method, params: {}, ...extra })}\n`;
const wireError = (line: Record<string, unknown> | undefined) => (line?.['error'] as { message: string; data: { code: string } } | undefined);

/** Host.getCapabilities from a process running as `uid`:`gid`: 'ok', or the error code the daemon answered. */
async function callAs(path: string, uid: number, gid: number): Promise<string> {
  const script = `const s = require('node:net').createConnection(process.argv[1]);
s.on('connect', () => s.write(${JSON.stringify(request(1, 'Host.getCapabilities'))}));
let text = '';
s.on('data', (c) => { text += c; if (text.includes('\\n')) { process.stdout.write(text.split('\\n')[0]); s.destroy(); } });`;
  const r = await execa(process.execPath, ['-e', script, path], { uid, gid, cwd: '/' });
  const line = JSON.parse(r.stdout) as Record<string, unknown>;
  return 'result' in line ? 'ok' : wireError(line)!.data.code;
}

/**
 * A daemon on a fresh embedded root in `dir` with the config file `config` (and `flags`),
 * its stderr collected; `fn` gets a connected client and the log so far; the daemon is
 * stopped whatever happens.
 */
async function withDaemon(dir: string, config: string, fn: (client: RpcClient, daemon: ReturnType<typeof startDaemon>, log: () => string) => Promise<void>, flags: string[] = []): Promise<void> {
  const uri = await prepareEmbedRoot(join(dir, 'embed'));
  const sock = join(dir, 'd.sock');
  const daemon = startDaemon(['--config', config, '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state'), ...flags]);
  let log = '';
  daemon.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const client = await connect(sock);
  try {
    await fn(client, daemon, () => log);
  } finally {
    client.close();
    daemon.kill('SIGTERM');
    await daemon;
  }
}

/** A daemon on `uri` with state in `dir`, stopped whatever `fn` does. */
async function withDaemonOn(uri: string, dir: string, fn: (client: RpcClient) => Promise<void>): Promise<void> {
  const sock = join(dir, 'on.sock');
  const daemon = startDaemon(['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')]);
  const client = await connect(sock);
  try {
    await fn(client);
  } finally {
    client.close();
    daemon.kill('SIGTERM');
    await daemon;
  }
}

/** The two kinds of host a daemon test runs on; `dir` is the test's own directory. */
const DAEMON_HOSTS: readonly { readonly title: string; open(dir: string): Promise<{ uri: string; stop: () => Promise<void> }> }[] = [
  { title: 'qemu:///embed', open: async (dir) => ({ uri: await prepareEmbedRoot(join(dir, 'embed')), stop: async () => undefined }) },
  {
    title: 'libvirtd, QEMU as libvirt-qemu',
    open: async (dir) => {
      // QEMU is another user here: it must pass through the test's directory to the images.
      chmodSync(dir, 0o711);
      const daemon = await startPrivateLibvirtd();
      return { uri: daemon.uri, stop: () => daemon.stop() };
    },
  },
];

describe('configdrived, the real process', function () {
  this.timeout(240_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'daemon-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('ships units that systemd-analyze verify accepts', async () => {
    for (const unit of ['configdrived.service', 'configdrived.socket']) {
      // verify needs ExecStart's binary to exist: point it at this checkout's build.
      const text = readFileSync(join(UNITS, unit), 'utf8').replace('/usr/lib/configdrive-agent/dist/agent/configdrived.js', DAEMON).replace('/usr/bin/node', process.execPath);
      writeFileSync(join(dir, unit), text);
    }
    const r = await execa('systemd-analyze', ['verify', '--man=no', join(dir, 'configdrived.service'), join(dir, 'configdrived.socket')], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /configdrived/, r.stderr);
  });

  it('serves a socket handed over by systemd-socket-activate and reports READY=1 on NOTIFY_SOCKET', async () => {
    const root = join(dir, 'embed');
    await prepareEmbedRoot(root);
    const sock = join(dir, 'activated.sock');
    const notify = join(dir, 'notify.sock');
    // A real datagram listener, as systemd's would be: prints the first message it gets.
    const listener = execa(DEBIAN_PYTHON, ['-c', `import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound", flush=True)\nprint(s.recv(4096).decode(), flush=True)`, notify], { reject: false });
    await new Promise<void>((r) => listener.stdout!.once('data', () => r()));
    const daemon = execa('systemd-socket-activate', ['-l', sock, '-E', `NOTIFY_SOCKET=${notify}`, process.execPath, DAEMON, '--config', join(dir, 'none.yaml'), '--uri', embedUri(root), '--state-dir', join(dir, 'state')], { reject: false });
    try {
      // systemd-socket-activate starts the daemon on the first connection, as socket units do.
      const client = await connect(sock);
      const caps = await client.call<{ libvirt: { uri: string } }>('Host.getCapabilities');
      assert.ok(caps.libvirt.uri.startsWith('qemu:///embed'));
      client.close();
      const ready = await listener;
      assert.match(ready.stdout, /READY=1/);
    } finally {
      daemon.kill('SIGTERM');
      await daemon;
    }
  });

  it('attaches a pre-built drive named by path, only from its builds and the imageDirs setting', async () => {
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'prebuilt-vm', macs: MACS }));
    const defined = await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'vm.xml')}`], { reject: false });
    assert.equal(defined.exitCode, 0, defined.stderr);
    const ops = join(dir, 'ops');
    mkdirSync(ops);
    writeFileSync(join(dir, 'configdrived.yaml'), `imageDirs: [${JSON.stringify(ops)}]\n`);
    const sock = join(dir, 'd.sock');
    const daemon = startDaemon(['--config', join(dir, 'configdrived.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')]);
    const client = await connect(sock);
    try {
      const built = await client.call<{ path: string; sha256: string; instanceId: string }>('Payload.build', { initialization: SEED_XML });
      const attached = await client.call<{ path: string; sha256: string; instanceId: string; verified: { files: number } }>('Payload.attach', { domain: 'prebuilt-vm', image: built.path });
      assert.notEqual(attached.path, built.path, 'the store keeps its own copy');
      assert.equal(attached.sha256, built.sha256);
      assert.equal(attached.instanceId, built.instanceId);
      assert.equal(attached.verified.files, 3);

      writeFileSync(join(ops, 'operator.iso'), readFileSync(built.path));
      const fromOps = await client.call<{ sha256: string; changed: boolean }>('Payload.attach', { domain: 'prebuilt-vm', image: join(ops, 'operator.iso') });
      assert.equal(fromOps.sha256, built.sha256);
      assert.equal(fromOps.changed, false, 'the same drive again changes nothing');

      const refusal = async (params: Record<string, unknown>, method = 'Payload.attach') =>
        client.call(method, params).then(
          () => assert.fail(`${JSON.stringify(params)} was accepted`),
          (e: AgentError) => ({ code: e.code, path: e.problems[0]?.path, message: e.problems[0]?.message ?? '' }),
        );
      let r = await refusal({ domain: 'prebuilt-vm', image: '/etc/shadow' });
      assert.deepEqual([r.code, r.path], ['INVALID_PARAMS', 'params.image']);
      assert.match(r.message, /outside the directories/);
      writeFileSync(join(ops, 'garbage.iso'), Buffer.alloc(70_000, 0x41));
      r = await refusal({ domain: 'prebuilt-vm', image: join(ops, 'garbage.iso') });
      assert.match(r.message, /not a readable ISO9660 volume/);
      r = await refusal({ image: built.path }, 'Payload.build');
      assert.deepEqual([r.code, r.path, r.message], ['INVALID_PARAMS', 'params.image', 'is not a known field']);
      r = await refusal({ domain: 'prebuilt-vm', image: built.path, initialization: SEED_XML });
      assert.deepEqual([r.code, r.path], ['INVALID_PARAMS', 'params']);

      // VDSM's raw payload: its volId is the label, on a build thread and on the domain.
      const meta = Buffer.from(JSON.stringify({ uuid: 'iid-vdsm-raw' })).toString('base64');
      const raw = await client.call<{ label: string; instanceId: string; verified: { label: string }; path: string; warnings: string[] }>('Payload.attach', {
        domain: 'prebuilt-vm',
        files: { volId: 'OEMDRV', file: { 'openstack/latest/meta_data.json': meta } },
      });
      assert.deepEqual([raw.label, raw.verified.label, raw.instanceId], ['OEMDRV', 'OEMDRV', 'iid-vdsm-raw']);
      assert.match((await execa('isoinfo', ['-d', '-i', raw.path])).stdout, /^Volume id: OEMDRV$/m, 'an independent reader sees the label');
      assert.match(raw.warnings.join('\n'), /volume label "OEMDRV": cloud-init reads a volume labelled config-2/);
      r = await refusal({ domain: 'prebuilt-vm', files: { file: { 'openstack/latest/user_data': meta } } });
      assert.deepEqual([r.code, r.path], ['INVALID_PARAMS', 'params.files.file']);
      // Still serving.
      assert.equal((await client.call<unknown[]>('Payload.list')).length, 1);
    } finally {
      client.close();
      daemon.kill('SIGTERM');
      await daemon;
    }
  });

  it('refuses hostile documents on its build threads with the field named, never logs a password, and keeps serving', async () => {
    const secret = 'Sup3r-s3cret-pw';
    await withDaemon(dir, join(dir, 'none.yaml'), async (client, _daemon, log) => {
      const failure = (params: Record<string, unknown>) =>
        client.call('Payload.build', params).then(
          () => assert.fail('accepted'),
          (e: AgentError) => e,
        );
      const withSecret = SEED_XML.replace('<password>myPass</password>', `<password>${secret}</password>`);
      let e = await failure({ initialization: withSecret.replace('<netmask>255.255.255.0</netmask>', '<netmask>255.0.255.0</netmask>') });
      assert.equal(e.code, 'INVALID_INITIALIZATION');
      assert.equal(e.problems[0]?.path, '/vm/initialization/nic_configurations/nic_configuration[0]/ip/netmask');
      e = await failure({ initialization: `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><initialization><host_name>&b;</host_name></initialization>` });
      assert.equal(e.code, 'INVALID_INITIALIZATION');
      assert.match(e.message, /DOCTYPE/);
      e = await failure({ initialization: { configdrive: 1, hostname: 'ok', users: [{ name: 'root', password: secret, bogus: true }] } });
      assert.equal(e.code, 'INVALID_INITIALIZATION');
      assert.match(e.problems.map((p) => p.path).join(','), /users\[0\]\.bogus/);
      e = await failure({ initialization: '{"configdrive": 1, "hostname": ', format: 'json' });
      assert.equal(e.code, 'INVALID_INITIALIZATION');
      // The same threads still build, and the password reached neither a reply nor the log.
      const built = await client.call<{ path: string; files: { path: string }[] }>('Payload.build', { initialization: withSecret });
      assert.equal(built.files.length, 3);
      await new Promise((r) => setTimeout(r, 200));
      assert.match(log(), /method=Payload\.build .*outcome=INVALID_INITIALIZATION/);
      assert.doesNotMatch(log(), new RegExp(secret));
      assert.doesNotMatch(readFileSync(built.path).toString('latin1'), new RegExp(secret), 'only the hash is on the drive');
    });
  });

  it('reloads on SIGHUP every setting the table marks reloadable, and keeps the running settings when the new file is bad', async () => {
    // Callers with other uids must reach the socket for allowedUids and allowedGids to tell them apart.
    chmodSync(dir, 0o711);
    const config = join(dir, 'configdrived.yaml');
    const ops = join(dir, 'ops');
    mkdirSync(ops);
    // JSON is YAML. socketMode only applies at start: every version keeps it, so no restart is due.
    const writeConfig = (settings: object) => writeFileSync(config, JSON.stringify({ socketMode: '0666', ...settings }));
    writeConfig({});
    const sock = join(dir, 'd.sock');
    await withDaemon(dir, config, async (client, daemon, log) => {
      const caps = async () => (await client.call<{ isoWriter: string }>('Host.getCapabilities')).isoWriter;
      const build = () => client.call<{ size: number; path: string }>('Payload.build', { initialization: SEED_XML });
      const attachFromOps = () => client.call('Payload.attach', { domain: 'no-such-vm', image: join(ops, 'operator.iso') }).then(() => 'ok', (e: AgentError) => e.code);
      const longLine = request(1, 'Payload.list', { padding: 'x'.repeat(100_000) });
      const twoAtOnce = async () =>
        (await exchange(sock, request(1, 'Payload.list') + request(2, 'Payload.list'), 2)).lines.sort((a, b) => Number(a['id']) - Number(b['id'])).map((l) => wireError(l)?.data.code ?? 'ok');
      // 4201 is allowed by its uid, 4202 by its gid 4302, 4203 by neither.
      const callers = async () => [await callAs(sock, 4201, 4201), await callAs(sock, 4202, 4302), await callAs(sock, 4203, 4203)];

      assert.equal(await caps(), 'builtin');
      const built = await build();
      assert.ok(built.size < 100_000, 'the builtin writer packs the seed in under 100 kB');
      copyFileSync(built.path, join(ops, 'operator.iso'));
      assert.equal(await attachFromOps(), 'INVALID_PARAMS');
      assert.ok('result' in (await exchange(sock, longLine, 1)).lines[0]!);
      assert.deepEqual(await twoAtOnce(), ['ok', 'ok']);
      assert.deepEqual(await callers(), ['ok', 'ok', 'ok']);

      const reloaded: Pick<Config, ReloadableKey> = {
        isoWriter: 'genisoimage',
        maxFrameBytes: 65_536,
        idleTimeoutMs: 1000,
        maxConnections: 1024,
        maxInFlight: 1,
        drainTimeoutMs: 1234,
        allowedUids: [4201],
        allowedGids: [4302],
        logLevel: 'warning',
        imageDirs: [ops],
      };
      const checked = new Set<ReloadableKey>();
      writeConfig(reloaded);
      daemon.kill('SIGHUP');
      // One reload applies every key at once: the new writer in the capabilities says it is done.
      for (let i = 0; i < 200 && (await caps()) !== 'genisoimage'; i++) await sleep(50);
      // Lets the log lines of the requests made before it arrive.
      await sleep(300);
      const quiet = log().length;
      assert.equal(await caps(), 'genisoimage');
      // genisoimage pads the same files to about 384 kB: the builds really use it now.
      assert.ok((await build()).size > 300_000);
      checked.add('isoWriter');
      assert.equal(await attachFromOps(), 'DOMAIN_NOT_FOUND', 'the image passes the imageDirs check, then the domain is looked up');
      checked.add('imageDirs');
      assert.match(wireError((await exchange(sock, longLine, 1)).lines[0])?.message ?? '', /over the 65536-byte limit/);
      checked.add('maxFrameBytes');
      const idle = await exchange(sock, undefined, 1);
      assert.match(wireError(idle.lines[0])?.message ?? '', /no complete request for 1000 ms/);
      checked.add('idleTimeoutMs');
      assert.deepEqual(await twoAtOnce(), ['ok', 'BUSY']);
      checked.add('maxInFlight');
      assert.deepEqual(await callers(), ['ok', 'ok', 'UNAUTHORIZED']);
      checked.add('allowedUids').add('allowedGids');
      await waitForLog(log, / warning connection refused peer="uid:4203,/, quiet);
      assert.doesNotMatch(log().slice(quiet), / info /, 'at warning, requests are no longer logged');
      checked.add('logLevel');

      writeConfig({ ...reloaded, isoWriter: 'nonsense', noSuchKey: 1 });
      daemon.kill('SIGHUP');
      await waitForLog(log, /reload failed; keeping the running configuration/, quiet);
      assert.match(log(), /noSuchKey/);
      assert.equal(await caps(), 'genisoimage', 'a bad file changes nothing');

      // maxConnections last: at 1, the test's own connection is the only one served.
      const mark = log().length;
      writeConfig({ ...reloaded, logLevel: 'info', maxConnections: 1 });
      daemon.kill('SIGHUP');
      await waitForLog(log, / info configuration reloaded/, mark);
      assert.match(wireError((await exchange(sock, undefined, 1)).lines[0])?.message ?? '', /too many connections \(limit 1\)/);
      checked.add('maxConnections');
      assert.doesNotMatch(log(), /only a restart applies/, 'the flags --socket, --uri and --state-dir still win over the file');
      daemon.kill('SIGTERM');
      await daemon;
      assert.match(log(), /stopping signal=SIGTERM drainMs=1234/);
      checked.add('drainTimeoutMs');
      assert.deepEqual([...checked].sort(), [...RELOADABLE_KEYS].sort(), 'every key the table marks reloadable is checked here');
    });
  });

  it('applies the command-line flags over the files again on every SIGHUP, as at start', async () => {
    const config = join(dir, 'configdrived.yaml');
    writeFileSync(config, 'logLevel: warning\n');
    await withDaemon(
      dir,
      config,
      async (client, daemon, log) => {
        await waitForLog(log, / info ready /);
        for (let round = 0; round < 2; round++) {
          const mark = log().length;
          daemon.kill('SIGHUP');
          await waitForLog(log, / info configuration reloaded logLevel=info/, mark);
          await client.call('Payload.list');
          await waitForLog(log, / info request .*method=Payload\.list/, mark);
        }
        assert.doesNotMatch(log(), /only a restart applies/);
      },
      ['--log-level', 'info'],
    );
  });

  for (const host of DAEMON_HOSTS) it(`starts a domain over the socket, and after SIGKILL mid-attach a restart leaves records, files and libvirt consistent (${host.title})`, async () => {
    const { uri, stop } = await host.open(dir);
    try {
      const names = ['crash-a', 'crash-b', 'crash-c', 'crash-d'];
      mkdirSync(join(dir, 'xml'));
      for (const name of names) {
        writeFileSync(join(dir, 'xml', `${name}.xml`), domainXml({ name, macs: MACS }));
        const r = await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'xml', `${name}.xml`)}`], { reject: false });
        assert.equal(r.exitCode, 0, r.stderr);
      }
      const sock = join(dir, 'd.sock');
      const state = join(dir, 'state');
      const args = ['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', state];

      let daemon = startDaemon(args);
      let client = await connect(sock);
      const first = await client.call<{ path: string; verified: { liveSource: boolean } }>('VM.start', { domain: 'crash-a', initialization: SEED_XML });
      assert.equal(first.verified.liveSource, true);
      // Three attaches in flight, then the daemon dies without warning.
      const inFlight = names.slice(1).map((domain) => client.call('Payload.attach', { domain, initialization: SEED_XML }).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 40));
      daemon.kill('SIGKILL');
      await daemon;
      await Promise.all(inFlight);
      client.close();

      daemon = startDaemon(args);
      client = await connect(sock);
      const list = await client.call<{ domain: { name: string }; payload: { path: string; target: string } | null; pending: boolean }[]>('Payload.list');
      client.close();
      daemon.kill('SIGTERM');
      const stopped = await daemon;
      assert.equal(stopped.exitCode, 0, String(stopped.stderr));
      assert.match(String(stopped.stderr), /recovered state/);

      const images = readdirSync(join(state, 'images'));
      assert.deepEqual(images.filter((f) => f.startsWith('.configdrive-tmp-')), [], 'no temp file survives');
      for (const entry of list) assert.equal(entry.pending, false, `${entry.domain.name} has a half-done change`);
      for (const name of names) {
        // virsh on an embed root with running guests sometimes crashes while exiting
        // (libvirt 9.0), after printing the XML: judge by what it printed.
        const dump = await execa('virsh', ['-q', '-c', uri, `dumpxml --inactive ${name}`], { reject: false });
        const xml = String(dump.stdout);
        assert.match(xml, /<\/domain>/, `virsh printed no XML for ${name}: ${String(dump.stderr)}`);
        const disks = describeDomain(xml).disks.filter((d) => d.device === 'cdrom');
        const recorded = list.find((e) => e.domain.name === name)?.payload ?? null;
        if (recorded === null) {
          assert.deepEqual(disks.filter((d) => d.source !== undefined), [], `${name}: a CD-ROM with media but no record`);
        } else {
          assert.ok(existsSync(recorded.path), `${name}: record points at a missing image`);
          assert.equal(disks.find((d) => d.target === recorded.target)?.source, recorded.path, `${name}: definition and record disagree`);
        }
      }
      assert.equal(images.length, list.filter((e) => e.payload !== null).length, 'one image per recorded drive, no orphans');
      await execa('virsh', ['-q', '-c', uri, names.map((n) => `destroy ${n}`).join('; ')], { reject: false });
    } finally {
      await stop();
    }
  });

  it('on libvirtd, refuses at once to start when QEMU could not reach its images, naming the directory and the fix; in a good layout QEMU reads 0640 images of its group and nothing else', async () => {
    const libvirtd = await startPrivateLibvirtd();
    try {
      chmodSync(dir, 0o711);
      const closed = join(dir, 'closed');
      mkdirSync(closed, { mode: 0o700 });
      const refused = await startDaemon(['--config', join(dir, 'none.yaml'), '--uri', libvirtd.uri, '--socket', join(dir, 'refused.sock'), '--state-dir', join(closed, 'state')]);
      assert.equal(refused.exitCode, 1, String(refused.stderr));
      const text = String(refused.stderr);
      assert.match(text, /code=HOST_SETUP/);
      assert.ok(text.includes(`cannot search ${closed} (owner 0, group 0, mode 0700)`), text);
      assert.ok(text.includes(`Fix: chmod o+x ${closed}`), text);

      writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'layout-vm', macs: MACS }));
      const defined = await execa('virsh', ['-q', '-c', libvirtd.uri, `define ${join(dir, 'vm.xml')}`], { reject: false });
      assert.equal(defined.exitCode, 0, defined.stderr);
      const state = join(dir, 'state');
      await withDaemonOn(libvirtd.uri, dir, async (client) => {
        const started = await client.call<{ path: string; verified: { liveSource: boolean } }>('VM.start', { domain: 'layout-vm', initialization: SEED_XML });
        assert.equal(started.verified.liveSource, true);
        const caps = await execa('virsh', ['-c', libvirtd.uri, 'capabilities']);
        const [uid, gid] = /<baselabel type='kvm'>\+(\d+):\+(\d+)<\/baselabel>/.exec(caps.stdout)!.slice(1).map(Number) as [number, number];
        assert.notEqual(uid, 0, 'QEMU runs as its own user');
        const image = statSync(started.path);
        assert.deepEqual([image.uid, image.gid, image.mode & 0o777], [0, gid, 0o640], 'root-owned, QEMU-group readable, never relabelled to QEMU');
        assert.deepEqual([statSync(state).mode & 0o777, statSync(join(state, 'images')).mode & 0o777, statSync(join(state, 'images')).gid], [0o711, 0o710, gid]);
        assert.equal(statSync(join(state, 'domains')).mode & 0o777, 0o700);
        const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && commandLine(Number(p)).includes('guest=layout-vm'));
        assert.equal(qemu.length, 1, 'one QEMU for the domain');
        assert.equal(statSync(`/proc/${qemu[0]!}`).uid, uid);
        const held = readdirSync(`/proc/${qemu[0]!}/fd`).map((fd) => readlinkSync(`/proc/${qemu[0]!}/fd/${fd}`));
        assert.ok(held.includes(started.path), `QEMU has the image open: ${held.join(' ')}`);
        // Shut off first: an eject this soon after the start may be refused (the firmware
        // holds the tray; docs/libvirt.md), which defers the image's removal to the run's end.
        assert.equal((await execa('virsh', ['-q', '-c', libvirtd.uri, 'destroy layout-vm'], { reject: false })).exitCode, 0);
        const detached = await client.call<{ deferred: string | null }>('Payload.detach', { domain: 'layout-vm' });
        assert.equal(detached.deferred, null);
        assert.equal(existsSync(started.path), false);
      });
    } finally {
      await libvirtd.stop();
    }
  });

  it('stops under `npx configdrived` when npm exec gets SIGTERM, which npm does not pass on', async () => {
    const sock = join(dir, 'npx.sock');
    // Prepared before the daemon can open it: a daemon first to the root would meet
    // libvirt's built-in QEMU user, and refuse a state dir that user cannot reach.
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    const npm = execa('npx', ['configdrived', '--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')], {
      cwd: resolve(HERE, '../../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      reject: false,
    });
    let log = '';
    npm.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const daemons = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && commandLine(Number(p)).includes(sock)).map(Number);
    try {
      await Promise.race([
        connect(sock).then(
          (client) => client.close(),
          (err: unknown) => assert.fail(`${String(err)}; npx configdrived printed:\n${log}`),
        ),
        npm.then((ended) => assert.fail(`npx configdrived exited ${String(ended.exitCode)} before it listened:\n${log}`)),
      ]);
      assert.ok(daemons().length >= 2, 'the launcher and the daemon it ran again');
      npm.kill('SIGTERM');
      await npm;
      for (let i = 0; i < 100 && daemons().some(running); i++) await sleep(100);
      assert.deepEqual(daemons().filter(running), [], `nothing of it is left running:\n${log}`);
      assert.match(log, /info stopping signal=SIGTERM/);
      assert.equal(existsSync(sock), false, 'its socket is removed');
    } finally {
      for (const pid of daemons()) process.kill(pid, 'SIGKILL');
      npm.kill('SIGKILL');
    }
  });

  it('stops the re-executed daemon cleanly when the process that started it is killed, and QEMU never holds the descriptor it watches', async () => {
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    writeFileSync(join(dir, 'vm.xml'), domainXml({ name: 'orphan-vm', macs: MACS }));
    const defined = await execa('virsh', ['-q', '-c', uri, `define ${join(dir, 'vm.xml')}`], { reject: false });
    assert.equal(defined.exitCode, 0, defined.stderr);
    const sock = join(dir, 'd.sock');
    const args = ['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')];
    // Without descriptors 3 and 4 open, the daemon runs itself again with them.
    const parent = execa(process.execPath, [DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'], reject: false });
    let log = '';
    parent.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    let child: number | undefined;
    try {
      const client = await connect(sock);
      child = childrenOf(parent.pid!)[0];
      assert.ok(child !== undefined, 'the daemon ran itself again');
      const started = await client.call<{ verified: { liveSource: boolean } }>('VM.start', { domain: 'orphan-vm', initialization: SEED_XML });
      assert.equal(started.verified.liveSource, true);
      client.close();
      const watch = readlinkSync(`/proc/${String(child)}/fd/5`);
      assert.match(watch, /^socket:/);
      const flags = parseInt(/^flags:\s*(\d+)$/m.exec(readFileSync(`/proc/${String(child)}/fdinfo/5`, 'utf8'))![1]!, 8);
      assert.notEqual(flags & O_CLOEXEC, 0, 'the programs the daemon runs (genisoimage, systemd-notify) do not inherit it');
      const qemu = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && commandLine(Number(p)).includes('guest=orphan-vm') && commandLine(Number(p)).includes(dir));
      assert.equal(qemu.length, 1, 'one QEMU for the domain');
      assert.ok(!readdirSync(`/proc/${qemu[0]!}/fd`).some((fd) => readlinkSync(`/proc/${qemu[0]!}/fd/${fd}`) === watch), 'QEMU holds no copy of it');

      parent.kill('SIGKILL');
      for (let i = 0; i < 100 && running(child); i++) await sleep(100);
      assert.equal(running(child), false, 'the daemon outlived the process that started it');
      assert.match(log, / warning the process that started this one is gone; stopping as on SIGTERM\n.* info stopping signal=SIGTERM .*\n(.*\n)*.* info stopped\n/);
      assert.equal(existsSync(sock), false, 'its socket is removed');
    } finally {
      if (child !== undefined && running(child)) process.kill(child, 'SIGKILL');
      parent.kill('SIGKILL');
      await parent;
    }
    // A daemon started afterwards finds the drive recorded and nothing half done.
    const daemon = startDaemon(args);
    const client = await connect(sock);
    const list = await client.call<{ domain: { name: string }; payload: unknown; pending: boolean }[]>('Payload.list');
    client.close();
    daemon.kill('SIGTERM');
    assert.equal((await daemon).exitCode, 0);
    assert.deepEqual(list.map((e) => [e.domain.name, e.payload !== null, e.pending]), [['orphan-vm', true, false]]);
    await execa('virsh', ['-q', '-c', uri, 'destroy orphan-vm'], { reject: false });
  });
});

/**
 * `configdrive`'s global options (--socket, --json, -h/--help) before or after the command
 * name, as with `virsh -c URI cmd`. The commands that talk to the daemon are pointed at a
 * stand-in that speaks the daemon's framing (one JSON object per line): the command line
 * is under test here, the daemon is in daemon.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';

const CAPS = { agent: { version: '9.9.9' }, libvirt: { library: '9.0.0', hypervisor: '7.2.0', uri: 'qemu:///embed' }, isoWriter: 'builtin' };
const RESULTS: Record<string, unknown> = { 'Host.getCapabilities': CAPS, 'Payload.list': [] };


/** Answers caps and list as the daemon would on an empty host, and remembers the methods asked for. */
async function fakeDaemon(path: string): Promise<{ server: Server; methods: string[] }> {
  const methods: string[] = [];
  const server = createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const request = JSON.parse(buffered.slice(0, nl)) as { id: number; method: string };
        buffered = buffered.slice(nl + 1);
        methods.push(request.method);
        socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: request.id, result: RESULTS[request.method] })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, methods };
}

describe('configdrive global options', function () {
  this.timeout(30_000);
  let dir = '';
  let sock = '';
  let daemon: { server: Server; methods: string[] };
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cli-globals-'));
    sock = join(dir, 'fake.sock');
    daemon = await fakeDaemon(sock);
  });
  afterEach(async () => {
    await new Promise((resolve) => daemon.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes --socket PATH and --socket=PATH before or after the command name', async () => {
    for (const argv of [['--socket', sock, 'caps'], [`--socket=${sock}`, 'caps'], ['caps', '--socket', sock], ['caps', `--socket=${sock}`]]) {
      const r = await cli(argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.out, /^configdrive-agent 9\.9\.9$/m, argv.join(' '));
    }
    assert.deepEqual(daemon.methods, Array(4).fill('Host.getCapabilities'));
  });

  it('takes --json before or after the command name, for daemon and offline commands alike', async () => {
    for (const argv of [['--json', '--socket', sock, 'caps'], ['--socket', sock, 'caps', '--json'], ['--socket', sock, '--json', 'caps']]) {
      const r = await cli(argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.err}`);
      assert.deepEqual(JSON.parse(r.out), CAPS, argv.join(' '));
    }
    const src = join(dir, 'tree');
    mkdirSync(join(src, 'openstack/latest'), { recursive: true });
    writeFileSync(join(src, 'openstack/latest/meta_data.json'), '{"uuid":"u"}');
    const iso = join(dir, 'p.iso');
    assert.equal((await cli(['--json', 'pack', src, '-o', iso])).code, 0);
    const inspected = await cli(['--json', 'inspect', iso]);
    assert.equal(inspected.code, 0, inspected.err);
    assert.equal((JSON.parse(inspected.out) as { label: string }).label, 'config-2');
  });

  it('lets a --socket after the command name win over one before it, as a repeated option does', async () => {
    const r = await cli(['--socket', join(dir, 'elsewhere.sock'), 'list', '--socket', sock]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(daemon.methods, ['Payload.list']);
  });

  it('names the socket it was given when nothing answers there', async () => {
    const absent = join(dir, 'absent.sock');
    for (const argv of [['--socket', absent, 'list'], ['list', `--socket=${absent}`]]) {
      const r = await cli(argv);
      assert.equal(r.code, 1, argv.join(' '));
      assert.match(r.err, new RegExp(`^configdrive list: cannot connect to configdrived at ${absent}: ENOENT .*\\[IO_ERROR\\]$`, 'm'));
    }
  });

  it("prints the main help for -h or --help before any command, and a command's help with it", async () => {
    for (const argv of [['--help'], ['-h'], ['--socket', sock, '--help'], ['help']]) {
      const r = await cli(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.out, /^Usage: configdrive \[--socket PATH\] \[--json\] COMMAND \[ARGS\.\.\.\]$/m, argv.join(' '));
    }
    for (const argv of [['--help', 'caps'], ['-h', '--socket', sock, 'caps'], ['caps', '--help'], ['--socket', sock, 'caps', '-h']]) {
      const r = await cli(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.out, /^Usage: configdrive caps /, argv.join(' '));
    }
    assert.deepEqual(daemon.methods, [], 'help talks to no daemon');
  });

  it('refuses --socket for the offline commands with a usage error that says they work offline', async () => {
    for (const argv of [['--socket', sock, 'build', 'x.xml', '-o', join(dir, 'x.iso')], ['inspect', 'x.iso', `--socket=${sock}`], [`--socket=${sock}`, 'pack', dir, '-o', join(dir, 'y.iso')]]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(' '));
      const name = argv.find((a) => ['build', 'inspect', 'pack'].includes(a))!;
      assert.match(r.err, new RegExp(`^configdrive ${name}: --socket is for the commands that talk to the daemon; this one works offline; see 'configdrive ${name} --help'$`, 'm'));
    }
  });

  it('refuses an unknown option before the command name, and --socket without a path', async () => {
    for (const argv of [['--bogus', 'caps'], ['--socket'], ['caps', '--socket'], ['--json=yes', 'caps'], ['--socket', sock]]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /see 'configdrive( caps)? --help'/, argv.join(' '));
    }
    assert.deepEqual(daemon.methods, []);
  });
});

/**
 * `npm run package` from this checkout: the .deb it writes, read with dpkg-deb and
 * lintian (layout, conffile, dependencies, units, man pages, maintainer scripts, no
 * devDependencies), and the programs in it run from the unpacked tree (the daemon on
 * real QEMU through the embedded driver, the CLI against it, and an offline build that
 * hashes a password through libcrypt).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { prepareEmbedRoot } from '../../src/libvirt/embed.js';
import { run } from '../helpers/tools.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const APP = 'usr/lib/configdrive-agent';
const SEED_XML = join(ROOT, 'test/fixtures/seed/initialization.xml');

describe('the Debian package (npm run package)', function () {
  this.timeout(180_000);
  let deb = '';
  let dir = '';
  let files: string[] = [];
  /** The unpacked package. */
  let tree = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'package-'));
    const started = performance.now();
    const built = await execa('npm', ['run', '--silent', 'package'], { cwd: ROOT, reject: false });
    assert.equal(built.exitCode, 0, built.stderr);
    deb = built.stdout.trimEnd().split('\n').at(-1)!;
    console.log(`      built ${deb.slice(ROOT.length + 1)} in ${((performance.now() - started) / 1000).toFixed(1)} s, ${(statSync(deb).size / 1024).toFixed(0)} KiB`);
    files = (await run('/usr/bin/dpkg-deb', ['-c', deb])).split('\n').filter(Boolean).map((line) => line.split(/\s+/).slice(5).join(' ').replace(/^\.\//, '').replace(/ -> .*$/, ''));
    tree = join(dir, 'tree');
    await run('/usr/bin/dpkg-deb', ['-x', deb, tree]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const field = async (name: string) => (await run('/usr/bin/dpkg-deb', ['-f', deb, name])).trim();

  it('is named and versioned after package.json, for this architecture', async () => {
    const arch = (await run('/usr/bin/dpkg', ['--print-architecture'])).trim();
    assert.equal(deb, join(ROOT, `dist/package/configdrive-agent_${PKG.version}_${arch}.deb`));
    assert.equal(await field('Package'), 'configdrive-agent');
    assert.equal(await field('Version'), PKG.version);
    assert.equal(await field('Architecture'), arch);
  });

  it('depends on what the code loads, recommends libvirtd and suggests genisoimage', async () => {
    const depends = (await field('Depends')).split(/,\s*/);
    for (const dep of ['nodejs (>= 20.19)', 'libvirt0', 'libcrypt1']) assert.ok(depends.includes(dep), `Depends: ${depends.join(', ')}`);
    assert.ok(depends.some((d) => d.startsWith('libc6 (>= ')), 'libc6 from koffi.node, via shlibs');
    assert.ok(depends.some((d) => d.includes('systemd-sysusers')), 'systemd-sysusers creates the group');
    assert.equal(await field('Recommends'), 'libvirt-daemon-system');
    assert.equal(await field('Suggests'), 'genisoimage');
  });

  it('installs the compiled code with its production node_modules under /usr/lib/configdrive-agent, and nothing of the build', () => {
    for (const f of [`${APP}/package.json`, `${APP}/dist/agent/configdrived.js`, `${APP}/dist/agent/configdrive.js`, `${APP}/dist/src/config/config.js`, `${APP}/dist/src/rpc/validators.js`, `${APP}/node_modules/koffi/package.json`]) {
      assert.ok(files.includes(f), `${f} is missing`);
    }
    assert.deepEqual(files.filter((f) => /\.map$|\/dist\/(test|bench)\/|\/demo\.js$|node_modules\/\.bin/.test(f)), []);
    for (const name of Object.keys(PKG.devDependencies)) assert.ok(!files.some((f) => f.startsWith(`${APP}/node_modules/${name}/`)), `devDependency ${name} is shipped`);
    const natives = files.filter((f) => f.endsWith('.node'));
    assert.equal(natives.length, 1, `one koffi binary, not ${natives.join(' ')}`);
    assert.match(natives[0]!, /\/koffi\/build\/koffi\/linux_x64\/koffi\.node$/);
    const wrapper = (program: string) => readFileSync(join(tree, 'usr/bin', program), 'utf8');
    for (const program of ['configdrive', 'configdrived']) {
      assert.equal(wrapper(program), `#!/bin/sh\nexec /usr/bin/node /usr/lib/configdrive-agent/dist/agent/${program}.js "$@"\n`);
      assert.equal(statSync(join(tree, 'usr/bin', program)).mode & 0o777, 0o755);
    }
  });

  it('ships the units, tmpfiles and sysusers files of systemd/, the socket enabled and the service not', async () => {
    const units = files.find((f) => f.endsWith('/configdrived.service'))!.replace(/configdrived\.service$/, '');
    assert.match(units, /^(usr\/)?lib\/systemd\/system\/$/);
    for (const [installed, source] of [
      [`${units}configdrived.service`, 'configdrived.service'],
      [`${units}configdrived.socket`, 'configdrived.socket'],
      ['usr/lib/tmpfiles.d/configdrived.conf', 'configdrived.tmpfiles.conf'],
      ['usr/lib/sysusers.d/configdrived.conf', 'configdrived.sysusers.conf'],
    ] as const) {
      assert.equal(readFileSync(join(tree, installed), 'utf8'), readFileSync(join(ROOT, 'systemd', source), 'utf8'), installed);
    }
    const service = readFileSync(join(tree, units, 'configdrived.service'), 'utf8');
    const execStart = /^ExecStart=\/usr\/bin\/node (\S+)$/m.exec(service)?.[1];
    assert.ok(execStart !== undefined && existsSync(join(tree, execStart)), `ExecStart names a file in the package: ${String(execStart)}`);
    assert.match(readFileSync(join(tree, units, 'configdrived.socket'), 'utf8'), /^SocketGroup=configdrive$/m);
    assert.match(readFileSync(join(tree, 'usr/lib/sysusers.d/configdrived.conf'), 'utf8'), /^g configdrive -$/m);

    const control = join(dir, 'control');
    await run('/usr/bin/dpkg-deb', ['-e', deb, control]);
    const postinst = readFileSync(join(control, 'postinst'), 'utf8');
    assert.match(postinst, /systemd-sysusers .*configdrived\.conf/);
    assert.match(postinst, /deb-systemd-helper enable 'configdrived\.socket'/);
    assert.match(postinst, /deb-systemd-invoke start 'configdrived\.socket'/);
    // The service is left as the administrator had it (enabled again only if it was).
    assert.match(postinst, /if deb-systemd-helper debian-installed 'configdrived\.service'/);
    assert.doesNotMatch(postinst, /deb-systemd-invoke \w+ 'configdrived\.service'/);
    assert.ok(postinst.indexOf('systemd-sysusers') < postinst.indexOf('deb-systemd-invoke start'), 'the group exists before the socket starts');
    // Upgrades stop both units before unpacking; the postinst starts the socket again.
    assert.match(readFileSync(join(control, 'preinst'), 'utf8'), /"\$1" = upgrade .*\n\s*deb-systemd-invoke stop 'configdrived\.socket'/);
  });

  it('ships the default configuration as a conffile, every key commented out', async () => {
    assert.equal((await run('/usr/bin/dpkg-deb', ['-I', deb, 'conffiles'])).trim(), '/etc/configdrived/configdrived.yaml');
    assert.equal(readFileSync(join(tree, 'etc/configdrived/configdrived.yaml'), 'utf8'), readFileSync(join(ROOT, 'tools/package/configdrived.yaml'), 'utf8'));
  });

  it('ships configdrive(1) and configdrived(8), which man renders without warnings', async () => {
    for (const page of ['usr/share/man/man1/configdrive.1.gz', 'usr/share/man/man8/configdrived.8.gz']) {
      assert.ok(files.includes(page), `${page} is missing`);
      const man = await execa('man', ['--warnings', '-E', 'UTF-8', '-l', join(tree, page)], { reject: false, env: { MANWIDTH: '80', LC_ALL: 'C.UTF-8' } });
      assert.equal(man.exitCode, 0, man.stderr);
      assert.equal(man.stderr, '', page);
      assert.match(man.stdout, /^SYNOPSIS$/m);
    }
  });

  it('lists in its copyright file every npm package it ships, with a license', () => {
    const copyright = readFileSync(join(tree, 'usr/share/doc/configdrive-agent/copyright'), 'utf8');
    const paragraphs = copyright.split('\n\n').map((p) => p.replace(/\n /g, ' '));
    assert.ok(paragraphs.some((p) => /^Files: \*$/m.test(p) && /^License: Apache-2\.0 /m.test(p)), 'the agent itself');
    const listed = new Set(paragraphs.filter((p) => /^Copyright: \S/m.test(p) && /^License: \S/m.test(p)).flatMap((p) => /^Files: (.*)$/m.exec(p)?.[1]?.split(' ') ?? []));
    const shipped = files.map((f) => /^usr\/lib\/configdrive-agent\/((?:node_modules\/(?:@[^/]+\/)?[^/]+\/)+)package\.json$/.exec(f)?.[1]).filter((d) => d !== undefined);
    assert.ok(shipped.length > 10, shipped.join(' '));
    for (const dir of shipped) assert.ok(listed.has(`${dir}*`), `${dir} has no Files paragraph with a copyright and a license`);
    assert.ok(files.includes('usr/share/doc/configdrive-agent/changelog.gz'));
  });

  it('passes lintian, with only the overrides it explains', async () => {
    const lintian = await execa('lintian', ['--fail-on', 'error,warning', '--display-info', '--pedantic', deb], { reject: false });
    console.log(`      lintian: ${lintian.stdout.trim() === '' ? 'no tags' : `\n${lintian.stdout}`}`);
    assert.equal(lintian.exitCode, 0, lintian.stdout + lintian.stderr);
    assert.equal(lintian.stdout.trim(), '', 'no tag, not even an informational or pedantic one');
  });

  it('runs from the unpacked tree: the daemon on embedded QEMU, the CLI against it, an offline build with a password', async () => {
    const node = (program: string, args: string[], options = {}) => execa(process.execPath, [join(tree, APP, 'dist/agent', `${program}.js`), ...args], { reject: false, ...options });
    const uri = await prepareEmbedRoot(join(dir, 'embed'));
    const sock = join(dir, 'd.sock');
    const daemon = node('configdrived', ['--config', join(dir, 'none.yaml'), '--uri', uri, '--socket', sock, '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe', { file: '/dev/null' }, { file: '/dev/null' }] });
    let log = '';
    daemon.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(sock) && daemon.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const caps = await node('configdrive', ['caps', '--socket', sock, '--json']);
      assert.equal(caps.exitCode, 0, `${caps.stderr}\nconfigdrived: ${log}`);
      assert.equal((JSON.parse(caps.stdout) as { agent: { version: string } }).agent.version, PKG.version);
    } finally {
      daemon.kill('SIGTERM');
      await daemon;
    }
    const built = await node('configdrive', ['build', SEED_XML, '-o', join(dir, 'seed.iso'), '--uuid', '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b', '--json']);
    assert.equal(built.exitCode, 0, built.stderr);
    assert.ok(readdirSync(dir).includes('seed.iso'));
  });
});

/**
 * The offline commands as a user runs them: `configdrive build`, `pack`, `inspect`,
 * exit statuses and one-line errors. The images are checked with isoinfo, not only by us.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli } from '../helpers/cli.js';
import { run } from '../helpers/tools.js';

const SEED_XML = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/seed/initialization.xml');
const UUID = '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';


describe('configdrive offline commands', function () {
  this.timeout(30_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("builds the seed's XML into a config-2 image that isoinfo reads, with MACs and the domain's first instance-id", async () => {
    const iso = join(dir, 'seed.iso');
    const r = await cli(['build', SEED_XML, '-o', iso, '--uuid', UUID, '--mac', 'eth0=52:54:00:00:00:01', '--mac', 'eth1=52:54:00:00:00:02', '--mac', 'eth2=52:54:00:00:00:03']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`instance-id  ${UUID}`));
    assert.equal(statSync(iso).mode & 0o777, 0o640);
    const listing = await run('/usr/bin/isoinfo', ['-R', '-f', '-i', iso]);
    assert.match(listing, /\/openstack\/latest\/network_data\.json/);
    const meta = JSON.parse(await run('/usr/bin/isoinfo', ['-R', '-x', '/openstack/latest/meta_data.json', '-i', iso])) as { uuid: string };
    assert.equal(meta.uuid, `${UUID}-g1`);
    const net = await run('/usr/bin/isoinfo', ['-R', '-x', '/openstack/latest/network_data.json', '-i', iso]);
    assert.match(net, /52:54:00:00:00:01/);
    assert.doesNotMatch(readFileSync(iso).toString('latin1'), /myPass/, 'the clear password is not on the drive');
  });

  it('reads standard input, writes a tree, prints every file with --print, and reports as JSON', async () => {
    const tree = join(dir, 'tree');
    const r = await cli(['build', '-', '--tree', tree, '--uuid', UUID, '--json', '--print'], 'configdrive: 1\nhostname: web1\n');
    assert.equal(r.code, 0, r.err);
    assert.match(readFileSync(join(tree, 'openstack/latest/user_data'), 'utf8'), /^hostname: "web1"$/m);
    assert.match(r.out, /==> openstack\/latest\/user_data <==/);
  });

  it('builds a NoCloud image with --format nocloud: label cidata, meta-data, user-data and network-config at the root, user-data 0600 in a tree', async () => {
    const iso = join(dir, 'nocloud.iso');
    const tree = join(dir, 'tree');
    const r = await cli(['build', SEED_XML, '-o', iso, '--tree', tree, '--format', 'nocloud', '--uuid', UUID, '--mac', 'eth0=52:54:00:00:00:01', '--mac', 'eth1=52:54:00:00:00:02', '--mac', 'eth2=52:54:00:00:00:03', '--json']);
    assert.equal(r.code, 0, r.err);
    const summary = JSON.parse(r.out) as { format: string; label: string; instanceId: string; files: { path: string }[] };
    assert.deepEqual([summary.format, summary.label, summary.instanceId], ['nocloud', 'cidata', `${UUID}-g1`]);
    assert.deepEqual(summary.files.map((f) => f.path), ['meta-data', 'network-config', 'user-data']);
    assert.match(await run('/usr/sbin/blkid', ['-o', 'value', '-s', 'LABEL', iso]), /^cidata$/m);
    const listing = await run('/usr/bin/isoinfo', ['-R', '-f', '-i', iso]);
    assert.deepEqual(listing.trim().split('\n').sort(), ['/meta-data', '/network-config', '/user-data']);
    assert.match(await run('/usr/bin/isoinfo', ['-R', '-x', '/meta-data', '-i', iso]), new RegExp(`^instance-id: "${UUID}-g1"$`, 'm'));
    assert.match(await run('/usr/bin/isoinfo', ['-R', '-x', '/network-config', '-i', iso]), /mac_address: "52:54:00:00:00:01"/);
    assert.equal(statSync(join(tree, 'user-data')).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(iso).toString('latin1'), /myPass/, 'the clear password is not on the drive');
  });

  it('refuses --label cidata with the OpenStack layout, pointing at --format nocloud, and a NoCloud drive under another label, before reading the input', async () => {
    for (const label of ['cidata', 'CIDATA']) {
      const r = await cli(['build', join(dir, 'never-read.xml'), '-o', join(dir, 'x.iso'), '--label', label]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^configdrive build: label "(cidata|CIDATA)" is NoCloud's.*--format nocloud.*\[INVALID_LABEL\]$/m);
    }
    const r = await cli(['build', join(dir, 'never-read.xml'), '-o', join(dir, 'x.iso'), '--format', 'nocloud', '--label', 'config-2']);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /a NoCloud drive must be labelled cidata .*\[INVALID_LABEL\]$/m);
    assert.doesNotMatch(r.err, /never-read/, 'refused before the input is opened');
  });

  it('refuses a --format it does not know, with exit 2', async () => {
    for (const format of ['NoCloud', 'config-2', '', 'nocloud\n', '../nocloud', 'x'.repeat(10_000)]) {
      const r = await cli(['build', SEED_XML, '-o', join(dir, 'x.iso'), '--format', format]);
      assert.equal(r.code, 2, JSON.stringify(format.slice(0, 20)));
      assert.match(r.err, /--format must be configdrive or nocloud/);
    }
  });

  it('fails with exit 1 and a one-line reason naming the field', async () => {
    const bad = join(dir, 'bad.xml');
    writeFileSync(bad, '<initialization><timezone>Mars/Base</timezone><host_name>ok</host_name></initialization>');
    const r = await cli(['build', bad, '-o', join(dir, 'x.iso'), '--uuid', UUID]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^configdrive build: The initialization is invalid: \/initialization\/timezone: "Mars\/Base" is not a known time zone .*\[INVALID_INITIALIZATION\]$/m);
  });

  it('names the field of the document for a problem found while building, and writes no image', async () => {
    const bad = join(dir, 'start.xml');
    writeFileSync(bad, '<action><use_cloud_init>true</use_cloud_init><vm><initialization><timezone>UTC</timezone><custom_script>timezone: Asia/Tokyo</custom_script></initialization></vm></action>');
    const r = await cli(['build', bad, '-o', join(dir, 'x.iso'), '--uuid', UUID]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^configdrive build: Cannot build the config drive: \/action\/vm\/initialization\/custom_script: at key timezone of its content: conflicts with timezone "UTC"/m);
    assert.throws(() => statSync(join(dir, 'x.iso')), { code: 'ENOENT' });
  });

  it('fails with exit 2 on a wrong command line, pointing at --help', async () => {
    for (const argv of [['build'], ['build', 'x.xml'], ['build', 'x.xml', '-o', 'y', '--mac', 'eth0'], ['build', 'x.xml', '-o', 'y', '--bogus'], ['frobnicate']]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(' '));
    }
  });

  it('packs a directory and inspects the image; refuses a symlink inside', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'openstack/latest'), { recursive: true });
    writeFileSync(join(src, 'openstack/latest/meta_data.json'), '{"uuid":"u"}');
    mkdirSync(join(src, 'empty'));
    const iso = join(dir, 'p.iso');
    const packed = await cli(['pack', src, '-o', iso, '--label', 'config-2']);
    assert.equal(packed.code, 0, packed.err);
    const inspected = await cli(['inspect', iso, '--json']);
    const view = JSON.parse(inspected.out) as { label: string; files: { path: string; size: number }[]; directories: string[] };
    assert.equal(view.label, 'config-2');
    assert.deepEqual(view.files.map((f) => [f.path, f.size]), [['openstack/latest/meta_data.json', 12]]);
    assert.ok(view.directories.includes('empty'));
    symlinkSync('/etc/passwd', join(src, 'link'));
    const refused = await cli(['pack', src, '-o', join(dir, 'q.iso')]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /is a symbolic link/);
  });

  it('reports a malformed image with exit 1', async () => {
    const junk = join(dir, 'junk.iso');
    writeFileSync(junk, Buffer.alloc(40_000, 7));
    const r = await cli(['inspect', junk]);
    assert.equal(r.code, 1);
    assert.match(r.err, /not a readable ISO9660 image.*\[ISO_MALFORMED\]/);
  });
});

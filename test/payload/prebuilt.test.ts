/**
 * A pre-built drive named by path: taken only from trusted directories, only as a
 * config-2 ISO with a meta_data.json cloud-init accepts; everything else is refused with
 * INVALID_PARAMS naming params.image.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { writeIsoImage } from '../../src/iso/index.js';
import { loadPrebuiltDrive } from '../../src/payload/prebuilt.js';

const enc = (s: string) => new TextEncoder().encode(s);
const META = 'openstack/latest/meta_data.json';

describe('pre-built drives', () => {
  let dir = '';
  let trusted = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'prebuilt-'));
    trusted = join(dir, 'trusted');
    mkdirSync(trusted);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const iso = (name: string, files: Record<string, string>, volumeId = 'config-2', where = trusted) => {
    const path = join(where, name);
    writeFileSync(path, writeIsoImage({ files: new Map(Object.entries(files).map(([p, c]) => [p, enc(c)])) }, { volumeId }));
    return path;
  };
  const refused = (pattern: RegExp) => (e: unknown) => {
    assert.ok(e instanceof AgentError, String(e));
    assert.equal(e.code, 'INVALID_PARAMS');
    assert.equal(e.problems[0]?.path, 'params.image');
    assert.match(e.problems[0]?.message ?? '', pattern);
    return true;
  };

  it('reads a config-2 drive from a trusted directory, with its instance-id', async () => {
    const path = iso('ok.iso', { [META]: '{"uuid": "iid-1", "hostname": "a"}', 'openstack/latest/user_data': '#cloud-config\n' });
    const drive = await loadPrebuiltDrive(path, [trusted], 'config-2');
    assert.equal(drive.instanceId, 'iid-1');
    assert.deepEqual([...drive.tree.keys()].sort(), [META, 'openstack/latest/user_data']);
    assert.ok(drive.bytes.length > 0);
  });

  it('refuses paths outside the trusted directories, also through a symlink or ..', async () => {
    const outside = iso('outside.iso', { [META]: '{"uuid": "x"}' }, 'config-2', dir);
    await assert.rejects(loadPrebuiltDrive(outside, [trusted], 'config-2'), refused(/outside the directories/));
    symlinkSync(outside, join(trusted, 'link.iso'));
    await assert.rejects(loadPrebuiltDrive(join(trusted, 'link.iso'), [trusted], 'config-2'), refused(/outside the directories/));
    await assert.rejects(loadPrebuiltDrive(join(trusted, '..', 'outside.iso'), [trusted], 'config-2'), refused(/outside the directories/));
    await assert.rejects(loadPrebuiltDrive('/etc/shadow', [trusted], 'config-2'), refused(/outside the directories/));
    await assert.rejects(loadPrebuiltDrive(`${trusted}-sibling/x.iso`, [trusted], 'config-2'), refused(/no such file/));
  });

  it('refuses a relative path, a missing file and a directory', async () => {
    await assert.rejects(loadPrebuiltDrive('drive.iso', [trusted], 'config-2'), refused(/not an absolute path/));
    await assert.rejects(loadPrebuiltDrive(join(trusted, 'none.iso'), [trusted], 'config-2'), refused(/no such file/));
    mkdirSync(join(trusted, 'dir.iso'));
    await assert.rejects(loadPrebuiltDrive(join(trusted, 'dir.iso'), [trusted], 'config-2'), refused(/not a regular file/));
  });

  it('refuses what the guest would ignore or cloud-init reject', async () => {
    writeFileSync(join(trusted, 'garbage.iso'), 'not an iso at all'.repeat(1000));
    await assert.rejects(loadPrebuiltDrive(join(trusted, 'garbage.iso'), [trusted], 'config-2'), refused(/not a readable ISO9660 volume/));
    const cidata = iso('cidata.iso', { [META]: '{"uuid": "x"}' }, 'cidata');
    await assert.rejects(loadPrebuiltDrive(cidata, [trusted], 'config-2'), refused(/labelled "cidata", not "config-2"/));
    const bare = iso('bare.iso', { 'openstack/latest/user_data': '#cloud-config\n' });
    await assert.rejects(loadPrebuiltDrive(bare, [trusted], 'config-2'), refused(/has no openstack\/latest\/meta_data.json/));
    const broken = iso('broken.iso', { [META]: '{"uuid": ' });
    await assert.rejects(loadPrebuiltDrive(broken, [trusted], 'config-2'), refused(/is not valid JSON/));
    const anonymous = iso('anon.iso', { [META]: '{"hostname": "a"}' });
    await assert.rejects(loadPrebuiltDrive(anonymous, [trusted], 'config-2'), refused(/has no uuid/));
  });
});

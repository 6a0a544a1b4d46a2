/**
 * What the agent refuses or warns about in a custom script before any guest sees it:
 * everything here is something cloud-init would drop, misread or let replace the
 * request's settings in the guest (user-data-generations.test.ts shows the types it
 * takes, as each release takes them).
 */
import assert from 'node:assert/strict';
import { MAX_CUSTOM_SCRIPT_BYTES } from '../../src/cloudinit/custom-script.js';
import { buildDriveTree, USER_DATA_PATH } from '../../src/cloudinit/index.js';
import { AgentError, type Problem } from '../../src/errors.js';
import type { Initialization } from '../../src/initialization/types.js';
import { clearPassword, facts, initialization, user } from '../helpers/initialization.js';

function problems(init: Initialization): readonly Problem[] {
  try {
    buildDriveTree(init, facts());
  } catch (err) {
    assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION', String(err));
    return err.problems;
  }
  assert.fail('the drive was built');
}

function refusedScript(script: string, why: RegExp, init: Partial<Initialization> = {}): void {
  const found = problems(initialization({ ...init, customScript: script }));
  assert.ok(found.some((p) => p.path === 'custom_script' && why.test(p.message)), `${why.toString()} not in ${JSON.stringify(found)}`);
}

function mime(parts: readonly string[]): string {
  return ['Content-Type: multipart/mixed; boundary=b', 'MIME-Version: 1.0', '', ...parts.flatMap((p) => ['--b', p]), '--b--', ''].join('\n');
}

const IGNITION = '{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core"}]}}';

describe('cloudinit custom scripts the agent refuses', () => {
  it('refuses an oversized script and one with no UTF-8 form, saying which', () => {
    refusedScript(`#!/bin/sh\n${'x'.repeat(MAX_CUSTOM_SCRIPT_BYTES)}`, /bytes, over the limit of 1048576/);
    refusedScript('#!/bin/sh\necho \ud800\n', /not valid Unicode text/);
  });

  it('refuses a template header cloud-init would not render, wherever it differs', () => {
    refusedScript('## template: jinja2\n#cloud-config\n', /very first line must be "## template: jinja"/);
    refusedScript('\n## template: jinja\n#cloud-config\n', /very first line must be/);
    refusedScript('##template:jinja\n#cloud-config\nruncmd: [echo {{ v1.local_hostname }}]\n', /very first line must be/);
    refusedScript('## template: jinja\n#cloud-config\nruncmd: [echo {{ v1.local_hostname }]\n', /has \{\{ on line 3 without its \}\}/);
    refusedScript('## template: jinja\n{% if true\n#cloud-config\n', /has \{% on line 2 without its %\}/);
    refusedScript('## template: jinja\nhostname: {{ v1.local_hostname }}\n', /text after the header starts with "hostname:/);
  });

  it("refuses a caller's merge rule on a cloud-config kept as a part, which could replace the request's settings", () => {
    refusedScript('## template: jinja\n#cloud-config\nmerge_how: dict(replace)+list()+str()\n', /brings its own merge rule \(a merge_how or merge_type key\)/);
    refusedScript(mime(['Content-Type: text/cloud-config\nMerge-Type: dict(replace)+list()+str()\n\n#cloud-config\nruncmd: [x]']), /MIME part 1 \(text\/cloud-config\) brings its own merge rule \(Merge-Type: dict\(replace\)/);
    refusedScript(mime(['Content-Type: text/cloud-config\n\n#cloud-config\nmerge_type: list(append)\n']), /MIME part 1 .* merge_how or merge_type key/);
  });

  it("refuses a MIME cloud-config part that conflicts with the request's settings or an earlier part", () => {
    refusedScript(mime(['Content-Type: text/cloud-config\n\n#cloud-config\ntimezone: UTC\n']), /MIME part 1 \(text\/cloud-config\) sets timezone to "UTC", which conflicts with "Asia\/Jerusalem" set by the request's own settings/, { timezone: 'Asia/Jerusalem' });
    refusedScript(mime(['Content-Type: text/cloud-config\n\n#cloud-config\nlocale: C\n', 'Content-Type: text/plain\n\n#cloud-config\nlocale: C.UTF-8\n']), /MIME part 2 \(text\/cloud-config\) sets locale to "C.UTF-8", which conflicts with "C" set by an earlier MIME part/);
  });

  it('refuses MIME parts cloud-init would skip: not UTF-8, not a mapping, compressed, of no handled type, archives and JSON patches', () => {
    refusedScript(mime([`Content-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\n${Buffer.from([0x23, 0x63, 0x6c, 0xff, 0xfe]).toString('base64')}`]), /MIME part 1 \(text\/cloud-config\) is not valid UTF-8/);
    refusedScript(mime(['Content-Type: text/cloud-config\n\n#cloud-config\n- a list\n']), /is not a YAML mapping/);
    refusedScript(mime(['Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\nH4sIAAAAAAAAA0tMSgYAAAD//w==']), /is compressed/);
    refusedScript(mime(['Content-Type: text/plain\n\njust words']), /MIME part 1 \(text\/plain\) has a type no cloud-init handler takes/);
    refusedScript(mime(['Content-Type: text/cloud-config-archive\n\n- "#cloud-config\\nruncmd: [x]"\n']), /#cloud-config-archive, whose cloud-config entries cloud-init merges by its default rule/);
    refusedScript('#cloud-config-jsonp\n[{"op": "remove", "path": "/users"}]\n', /#cloud-config-jsonp patch, which can replace or remove any of the agent's settings/);
    refusedScript('#include\n# nothing but a comment\n', /#include that lists no URL/);
  });

  it('refuses a MIME message cloud-init would misread, naming the fault', () => {
    refusedScript('Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n', /is MIME \(it has a MIME-Version header\), but the closing line --b-- is missing/);
  });
});

describe('cloudinit custom scripts the agent keeps, with what it cannot check said', () => {
  it('takes a part of a type only an earlier #part-handler registers, and says so', () => {
    const handler = 'Content-Type: text/part-handler\n\n#part-handler\ndef list_types():\n    return ["text/x-mine"]\ndef handle_part(*a):\n    pass';
    const built = buildDriveTree(initialization({ customScript: mime([handler, 'Content-Type: text/x-mine\n\nmy data']) }), facts());
    assert.deepEqual(built.warnings, ['MIME part 2 (text/x-mine) has a type only a #part-handler of this user data can take, which the agent cannot check']);
  });

  it("keeps a caller's MIME leaf byte for byte, only its merge rule put before its headers", () => {
    const leaf = 'Content-Type: text/cloud-config\r\nX-Note: mine\r\n\r\n#cloud-config\r\npackages: [htop]\r\n';
    const text = Buffer.from(buildDriveTree(initialization({ customScript: mime([leaf]) }), facts()).tree.get(USER_DATA_PATH)!).toString('utf8');
    assert.ok(text.includes(`\nMerge-Type: dict(no_replace,recurse_list)+list(append)+str()\r\n${leaf}\n--==configdrive-agent-`), text);
  });

  it('warns when a template or an Ignition config may keep the VM.initialized reporter from running', () => {
    const withKey = facts({ reportKey: '11'.repeat(32) });
    const jinja = buildDriveTree(initialization({ customScript: '## template: jinja\n#cloud-config\nbootcmd: [[echo, "{{ v1.instance_id }}"]]\n' }), withKey);
    assert.ok(jinja.warnings.some((w) => /custom_script sets bootcmd, which takes the place of the agent's VM.initialized reporter/.test(w)), jinja.warnings.join(' | '));
    const ignition = buildDriveTree(initialization({ customScript: IGNITION }), withKey);
    assert.ok(ignition.warnings.some((w) => /an Ignition guest does not run/.test(w)), ignition.warnings.join(' | '));
  });
});

describe('cloudinit Ignition configs as the custom script', () => {
  it('is the user data unchanged, with the host name and root keys beside it in meta_data.json', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGtleSBmb3IgdGVzdHM core@example';
    const built = buildDriveTree(initialization({ hostName: 'coreos-1', users: [user('root', { authorizedKeys: [key] })], customScript: IGNITION }), facts());
    assert.equal(Buffer.from(built.tree.get(USER_DATA_PATH)!).toString('utf8'), IGNITION);
    const meta = JSON.parse(Buffer.from(built.tree.get('openstack/latest/meta_data.json')!).toString('utf8')) as Record<string, unknown>;
    assert.equal(meta['hostname'], 'coreos-1');
    assert.deepEqual(Object.values(meta['public_keys'] as object), [key]);
  });

  it('refuses each setting that would have to be cloud-config beside it, by name', () => {
    const found = problems(
      initialization({
        customScript: IGNITION,
        users: [user('root', { password: clearPassword('x') }), user('alice')],
        timezone: 'UTC',
        systemLocale: 'C.UTF-8',
        files: [{ path: '/etc/x', content: new Uint8Array([1]) }],
        commands: ['true'],
        powerState: { mode: 'reboot', delayMinutes: 0 },
        regenerateSshKeys: true,
      }),
    );
    assert.deepEqual(found.map((p) => p.path), ['users[0].password', 'users[1]', 'timezone', 'locale', 'files', 'runcmd', 'power_state', 'regenerate_ssh_keys']);
    assert.ok(found.every((p) => /cannot go next to an Ignition config given as custom_script/.test(p.message)));
  });

  it('is told from a cloud-config by ignition.version, and refused without one', () => {
    refusedScript('{"ignition": {"config": {}}}', /no ignition.version string/);
    const flow = buildDriveTree(initialization({ customScript: '{"runcmd": ["echo json is yaml"]}' }), facts());
    assert.match(Buffer.from(flow.tree.get(USER_DATA_PATH)!).toString('utf8'), /^#cloud-config\n[\s\S]*"echo json is yaml"/);
  });
});

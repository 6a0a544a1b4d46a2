/**
 * Every user-data type a custom script can be, consumed by each cloud-init release from
 * 20.4 to 26.x as its init stage would: the drive read by DataSourceConfigDrive, the
 * user data by its UserDataProcessor, every part by the handler that takes it (templates
 * rendered from the instance data the datasource wrote), the merged cloud-config
 * schema-checked. Where a release cannot take a type, the build must say so by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriveTree, USER_DATA_PATH, type BuiltDrive } from '../../src/cloudinit/index.js';
import type { Initialization } from '../../src/initialization/types.js';
import { AgentError } from '../../src/errors.js';
import { facts, initialization, user } from '../helpers/initialization.js';
import { cloudInitReleases, type Release } from './cloud-init-generations.js';
import { consumeWithRelease, type Consumed } from './cloud-init-userdata.js';

interface Case {
  readonly label: string;
  readonly init: Initialization;
  /** Build warnings that must be there (each a pattern); any other warning fails. */
  readonly warnings?: readonly RegExp[];
  readonly check: (c: Consumed, version: string) => void;
}

function atLeast(version: string, wanted: string): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  const [x = 0, y = 0] = wanted.split('.').map(Number);
  return a > x || (a === x && b >= y);
}

const HOST = 'templated-host';
const AGENT_RUNCMD = 'echo from-the-request';
const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGtleSBmb3IgdGVzdHM';
/** Lines in full authorized_keys syntax, each with the options cloud-init must find in it. */
const OPTION_KEYS = [
  { options: 'from="10.0.0.0/8,192.168.1.0/24",no-pty,no-port-forwarding', comment: 'alice@example' },
  { options: 'command="/usr/bin/rsync --server --sender . /srv/backup, \\"quoted\\"",restrict', comment: 'backup key with spaces' },
  { options: 'environment="LANG=C.UTF-8",expiry-time="20301231"', comment: '' },
].map((k) => ({ ...k, line: `${k.options} ssh-ed25519 ${KEY}${k.comment === '' ? '' : ` ${k.comment}`}` }));

function noWarnings(c: Consumed, what: string): void {
  assert.deepEqual(c.log_warnings, [], `${what}: cloud-init logged warnings`);
}

function merged(c: Consumed): Record<string, unknown> {
  assert.equal(c.ud_error, undefined, 'user data processed');
  assert.ok(c.cloud_config, 'a merged cloud-config');
  assert.deepEqual(c.schema?.errors, [], `schema errors in\n${c.cloud_config_text ?? ''}`);
  return c.cloud_config;
}

function cases(dir: string): Case[] {
  const marker = join(dir, 'part-handler-ran');
  const included = join(dir, 'included.yaml');
  const mime = [
    'Content-Type: multipart/mixed; boundary="users-own"',
    'MIME-Version: 1.0',
    '',
    'preamble, ignored',
    '--users-own',
    'Content-Type: text/cloud-config',
    '',
    '#cloud-config',
    'packages: [htop]',
    'runcmd: [echo from-the-mime]',
    '--users-own',
    'Content-Type: text/x-shellscript; charset="utf-8"',
    'Content-Disposition: attachment; filename="mine.sh"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('#!/bin/sh\r\necho "--users-own"\n').toString('base64'),
    '--users-own',
    'Content-Type: text/plain',
    'Content-Disposition: attachment; filename="hook.sh"',
    '',
    '#cloud-boothook',
    'echo early',
    '--users-own',
    'Content-Type: text/x-shellscript-per-boot',
    'Content-Disposition: attachment; filename="every-boot.sh"',
    '',
    '#!/bin/sh',
    'echo every boot',
    '--users-own',
    'Content-Type: text/jinja2',
    '',
    '## template: jinja',
    '#cloud-config',
    'bootcmd: [echo {{ v1.instance_id }}]',
    '--users-own--',
    'epilogue, ignored',
    '',
  ].join('\r\n');
  return [
    {
      label: '## template: jinja cloud-config, rendered from the instance data',
      init: initialization({ hostName: HOST, commands: [AGENT_RUNCMD], customScript: `## template: jinja\n#cloud-config\nruncmd:\n  - echo {{ v1.local_hostname }}\nhostname: theirs\n` }),
      warnings: [/custom_script is a jinja template, rendered in the guest/],
      check: (c) => {
        const cfg = merged(c);
        assert.deepEqual(cfg['runcmd'], [AGENT_RUNCMD, `echo ${HOST}`], 'the template rendered, its list after ours');
        assert.equal(cfg['hostname'], HOST, "the agent's host name stays");
        noWarnings(c, 'jinja');
      },
    },
    {
      label: '## template: jinja script',
      init: initialization({ hostName: HOST, customScript: '## template: jinja\n#!/bin/sh\necho {{ v1.local_hostname }}\n' }),
      check: (c) => {
        merged(c);
        assert.deepEqual(Object.values(c.scripts ?? {}), [`#!/bin/sh\necho ${HOST}\n`]);
        noWarnings(c, 'jinja script');
      },
    },
    {
      label: '## template: jinja boothook (24.4 and later only)',
      init: initialization({ customScript: '## template: jinja\n#cloud-boothook\necho {{ v1.instance_id }}\n' }),
      warnings: [/rendering to a #cloud-boothook, which cloud-init 20\.4 to 24\.3 .* skip/],
      check: (c, version) => {
        merged(c);
        if (atLeast(version, '24.4')) {
          assert.equal(c.boothooks?.length, 1);
          assert.match(c.boothooks?.[0]?.content ?? '', /^echo [0-9a-f-]+-g1\n$/);
        } else {
          assert.deepEqual(c.boothooks, [], 'not run');
          assert.ok(c.log_warnings.some((w) => /Could not find supported sub-handler/.test(w)), `${version} says it skipped it: ${c.log_warnings.join('; ')}`);
        }
      },
    },
    {
      label: '#! script',
      init: initialization({ customScript: '#!/bin/bash\nset -e\necho "--not-a-boundary"\n' }),
      check: (c) => {
        merged(c);
        assert.deepEqual(c.scripts, { 'custom-script.sh': '#!/bin/bash\nset -e\necho "--not-a-boundary"\n' });
        noWarnings(c, 'script');
      },
    },
    {
      label: '#cloud-boothook',
      init: initialization({ customScript: '#cloud-boothook\n#!/bin/sh\necho early > /run/early\n' }),
      check: (c) => {
        merged(c);
        assert.deepEqual(c.boothooks?.map((b) => [b.content, b.instance_id]), [['#!/bin/sh\necho early > /run/early\n', `${facts().uuid}-g1`]], 'run with INSTANCE_ID');
        noWarnings(c, 'boothook');
      },
    },
    {
      label: '#include of a cloud-config (file URL)',
      init: initialization({ hostName: HOST, customScript: `#include\nfile://${included}\n` }),
      warnings: [/is an #include of .*one URL it cannot fetch fails all user data/],
      check: (c) => {
        const cfg = merged(c);
        assert.deepEqual(cfg['packages'], ['htop'], 'the included cloud-config is merged');
      },
    },
    {
      label: '#include of a URL that cannot be fetched: all user data lost, as the build warns',
      init: initialization({ hostName: HOST, customScript: `#include ${join(dir, 'missing.yaml')}\n` }),
      warnings: [/one URL it cannot fetch fails all user data/],
      check: (c) => {
        assert.match(c.ud_error ?? '', /missing\.yaml/);
      },
    },
    {
      label: '#part-handler',
      init: initialization({
        customScript: [
          '#part-handler',
          'def list_types():',
          '    return ["text/x-configdrive-test"]',
          'def handle_part(data, ctype, filename, payload):',
          `    with open(${JSON.stringify(marker)}, "a") as f:`,
          '        f.write(ctype + "\\n")',
          '',
        ].join('\n'),
      }),
      check: (c) => {
        merged(c);
        assert.deepEqual(readFileSync(marker, 'utf8').split('\n').filter((l) => l !== '').slice(-2), ['__begin__', '__end__']);
        noWarnings(c, 'part handler');
      },
    },
    {
      label: "the caller's MIME multipart, parts kept (CRLF, base64, sniffed text/plain, per-boot, jinja)",
      init: initialization({ hostName: HOST, commands: [AGENT_RUNCMD], customScript: mime }),
      warnings: [/MIME part 4 \(text\/x-shellscript-per-boot\): cloud-init 20\.4 .* skips the part/, /MIME part 5 \(text\/jinja2\) is a jinja template/],
      check: (c, version) => {
        const cfg = merged(c);
        assert.deepEqual(cfg['packages'], ['htop']);
        assert.deepEqual(cfg['runcmd'], [AGENT_RUNCMD, 'echo from-the-mime']);
        assert.equal(cfg['hostname'], HOST);
        assert.match(JSON.stringify(cfg['bootcmd']), /-g1/, 'the MIME jinja part rendered');
        assert.deepEqual(c.scripts, { 'mine.sh': '#!/bin/sh\necho "--users-own"\n' }, 'CRLF turned to LF by cloud-init itself, the rest intact');
        assert.deepEqual(c.boothooks?.map((b) => b.content), ['echo early']);
        if (atLeast(version, '22.1')) assert.deepEqual(c.scripts_by_frequency, { 'per-boot/every-boot.sh': '#!/bin/sh\necho every boot' });
        else assert.ok(c.log_warnings.some((w) => /Unhandled unknown content-type \(text\/x-shellscript-per-boot\)/.test(w)), c.log_warnings.join('; '));
      },
    },
    {
      label: 'Ignition JSON passed through as the user data',
      init: initialization({ hostName: HOST, customScript: '{"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "/etc/motd", "contents": {"source": "data:,hi"}}]}}\n' }),
      warnings: [/custom_script is an Ignition config \(version 3\.4\.0\)/],
      check: (c) => {
        assert.equal(c.ud_error, undefined);
        assert.deepEqual(c.parts?.map((p) => p.type), ['text/x-not-multipart']);
        assert.deepEqual(c.cloud_config, {}, 'nothing cloud-init would apply');
        assert.ok(c.log_warnings.some((w) => /Unhandled non-multipart/.test(w)), c.log_warnings.join('; '));
      },
    },
    {
      label: 'SSH keys with options and quoted values, for a user and for root',
      init: initialization({ users: [user('alice', { authorizedKeys: OPTION_KEYS.map((k) => k.line) }), user('root', { authorizedKeys: [OPTION_KEYS[0]!.line] })] }),
      check: (c) => {
        merged(c);
        const parsed = c.keys ?? [];
        assert.deepEqual(parsed.map((k) => k.line), [OPTION_KEYS[0]!.line, ...OPTION_KEYS.map((k) => k.line)], "root's from meta_data, alice's from users");
        parsed.forEach((k) => {
          const want = OPTION_KEYS.find((o) => o.line === k.line)!;
          assert.deepEqual({ keytype: k.keytype, options: k.options, comment: k.comment }, { keytype: 'ssh-ed25519', options: want.options, comment: want.comment }, k.line);
          assert.equal(k.written, k.line, 'the authorized_keys line cloud-init writes is the line given');
        });
        noWarnings(c, 'keys');
      },
    },
  ];
}

describe('custom scripts of every user-data type, consumed by every cloud-init release (20.4 to 26.x)', function () {
  this.timeout(900_000);
  let releases: Release[] = [];
  let dir = '';
  let table: Case[] = [];
  let drives: BuiltDrive[] = [];
  before(async () => {
    releases = await cloudInitReleases();
    dir = mkdtempSync(join(tmpdir(), 'user-data-types-'));
    writeFileSync(join(dir, 'included.yaml'), '#cloud-config\npackages: [htop]\n');
    table = cases(dir);
    drives = table.map((c) => buildDriveTree(c.init, facts()));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('warns by name where the agent cannot check a type or a release cannot take it, and nowhere else', () => {
    drives.forEach((d, i) => {
      const c = table[i]!;
      const wanted = c.warnings ?? [];
      assert.equal(d.warnings.length, wanted.length, `${c.label}: ${d.warnings.join(' | ')}`);
      wanted.forEach((re) => assert.ok(d.warnings.some((w) => re.test(w)), `${c.label}: no warning ${String(re)} in ${d.warnings.join(' | ')}`));
    });
  });

  it('keeps an Ignition config byte for byte as the user data', () => {
    const i = table.findIndex((c) => c.label.startsWith('Ignition'));
    assert.equal(Buffer.from(drives[i]!.tree.get(USER_DATA_PATH)!).toString('utf8'), table[i]!.init.customScript);
  });

  it('is taken by each release as the type it is', async () => {
    assert.ok(releases.length >= 4, `four releases at least: ${releases.map((r) => r.debVersion).join(', ')}`);
    for (const release of releases) {
      const { version, results } = await consumeWithRelease(release, drives.map((d) => d.tree));
      results.forEach((consumed, i) => {
        const c = table[i]!;
        assert.equal(consumed.error, undefined, `${version}, ${c.label}: ${consumed.error ?? ''}`);
        try {
          c.check(consumed, version);
        } catch (err) {
          if (err instanceof Error) err.message = `${version}, ${c.label}: ${err.message}`;
          throw err;
        }
      });
      console.log(`      ${version}: ${String(results.length)} user-data cases consumed as their type`);
    }
  });
});

/** User data the agent refuses, written straight onto a drive: what each release would do with it. */
const REFUSED: readonly { readonly label: string; readonly userData: string; readonly check: (c: Consumed, version: string) => void }[] = [
  {
    label: '## template: jinja2 (a header cloud-init types as jinja but does not render)',
    userData: '## template: jinja2\n#cloud-config\nruncmd: [echo never]\n',
    check: (c) => {
      assert.equal(c.cloud_config?.['runcmd'], undefined, 'dropped');
      assert.ok(c.log_warnings.length > 0, 'with a log line only');
    },
  },
  {
    label: 'a blank line before ## template: jinja',
    userData: '\n## template: jinja\n#cloud-config\nruncmd: [echo never]\n',
    check: (c) => assert.equal(c.cloud_config?.['runcmd'], undefined, 'dropped'),
  },
  {
    label: 'an unclosed {{ in a template',
    userData: '## template: jinja\n#cloud-config\nruncmd: [echo {{ v1.local_hostname }]\n',
    check: (c) => assert.equal(c.cloud_config?.['runcmd'], undefined, 'dropped'),
  },
  {
    label: 'a multipart without a boundary parameter',
    userData: 'Content-Type: multipart/mixed\nMIME-Version: 1.0\n\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\nruncmd: [echo never]\n--b--\n',
    check: (c) => assert.equal(c.cloud_config?.['runcmd'], undefined, 'dropped'),
  },
  {
    label: 'a cloud-config part that is not UTF-8',
    userData: `Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: base64\n\n${Buffer.concat([Buffer.from('#cloud-config\nruncmd: [echo '), Buffer.from([0xff, 0xfe]), Buffer.from(']\n')]).toString('base64')}\n--b--\n`,
    check: (c) => assert.equal(c.cloud_config?.['runcmd'], undefined, 'dropped'),
  },
  {
    label: "a cloud-config part with cloud-init's default merge rule after the agent's",
    userData: [
      'Content-Type: multipart/mixed; boundary=b',
      'MIME-Version: 1.0',
      '',
      '--b',
      'Content-Type: text/cloud-config',
      '',
      '#cloud-config',
      'hostname: ours',
      'runcmd: [echo ours]',
      '--b',
      'Content-Type: text/cloud-config',
      'Merge-Type: dict(replace)+list()+str()',
      '',
      '#cloud-config',
      'hostname: theirs',
      'runcmd: [echo theirs]',
      '--b--',
      '',
    ].join('\n'),
    check: (c) => assert.deepEqual([c.cloud_config?.['hostname'], c.cloud_config?.['runcmd']], ['theirs', ['echo theirs']], "the agent's settings replaced"),
  },
  {
    label: 'a #cloud-config-jsonp patch',
    userData: 'Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n--b\nContent-Type: text/cloud-config\n\n#cloud-config\nusers: [[]]\n--b\nContent-Type: text/plain\n\n#cloud-config-jsonp\n[{"op": "remove", "path": "/users"}]\n--b--\n',
    check: (c) => assert.equal(c.cloud_config?.['users'], undefined, "the agent's users removed"),
  },
];

describe('user data the agent refuses, as every cloud-init release would take it', function () {
  this.timeout(900_000);
  it('drops or lets it replace the request\'s settings, with at most a log line: the reason each is refused', async () => {
    const base = buildDriveTree(initialization({ hostName: HOST }), facts());
    const trees = REFUSED.map((r) => new Map([...base.tree, [USER_DATA_PATH, Buffer.from(r.userData, 'utf8')]]));
    for (const script of REFUSED.map((r) => r.userData)) assert.throws(() => buildDriveTree(initialization({ hostName: HOST, customScript: script }), facts()), AgentError);
    for (const release of await cloudInitReleases()) {
      const { version, results } = await consumeWithRelease(release, trees);
      results.forEach((consumed, i) => {
        const r = REFUSED[i]!;
        assert.equal(consumed.error, undefined, `${version}, ${r.label}: ${consumed.error ?? ''}`);
        try {
          r.check(consumed, version);
        } catch (err) {
          if (err instanceof Error) err.message = `${version}, ${r.label}: ${err.message}\n${JSON.stringify(consumed.log_warnings)}`;
          throw err;
        }
      });
    }
  });
});

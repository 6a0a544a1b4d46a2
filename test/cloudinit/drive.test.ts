/**
 * Whole drives, read back by cloud-init 22.4's own code: the seed's settings, users and
 * passwords, files, the custom script in its two forms, and what must never be on a drive.
 * Password hashes are checked with openssl, not with the code that made them.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { buildDriveTree, deriveSalt, type BuiltDrive } from '../../src/cloudinit/index.js';
import { AgentError } from '../../src/errors.js';
import type { Initialization } from '../../src/initialization/types.js';
import { clearPassword, DOMAIN_UUID, facts, hashedPassword, initialization, user } from '../helpers/initialization.js';
import { run } from '../helpers/tools.js';
import { readWithCloudInit, type CloudInitView } from './cloud-init-oracle.js';
import { assertSound, GUEST_MACS, MAC0, ROOT_KEY, SEED_FACTS, SEED_PASSWORD, seedInitialization } from './cases.js';

const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGtleSBmb3IgdGVzdHM alice@example';
const ALICE_PASSWORD = 'correct horse battery staple';
const SHA512_HASH = '$6$rounds=5000$abcdefgh$QkmYs8aRfpHJEHc9NbQZuxqXgN1Wm9t6Ww8bnQd3aG0Oj6Ga4JxQ7/2GHm9aqJ3n2n1QYb0sXz7d3ZP3QdW8m/';

interface Case {
  readonly name: string;
  readonly init: Initialization;
  readonly check: (view: CloudInitView, built: BuiltDrive) => void | Promise<void>;
}

function config(view: CloudInitView, key: string): unknown {
  return view.cloud_config[key];
}

interface WriteFile {
  readonly path: string;
  readonly content: string;
  readonly encoding?: string;
  readonly permissions?: string;
  readonly owner?: string;
}

function writtenFile(view: CloudInitView, path: string): WriteFile {
  const files = (config(view, 'write_files') ?? []) as WriteFile[];
  const file = files.find((f) => f.path === path);
  assert.ok(file, `write_files has no ${path}`);
  return file;
}

/** The independent check: openssl computes the crypt(3) hash from the clear password and the salt on the drive. */
async function assertHashOf(hash: unknown, password: string): Promise<void> {
  assert.equal(typeof hash, 'string');
  const m = /^\$6\$([^$]+)\$/.exec(hash as string);
  assert.ok(m, `${String(hash)} is not a SHA-512 crypt hash`);
  const expected = (await run('/usr/bin/openssl', ['passwd', '-6', '-salt', m[1]!, password])).trim();
  assert.equal(hash, expected);
}

function textOf(built: BuiltDrive): string {
  return [...built.tree.values()].map((b) => Buffer.from(b).toString('latin1')).join('\n');
}

const CASES: readonly Case[] = [
  {
    name: "the seed's settings: host name, root password and key, timezone, regenerated host keys, a file, three NICs",
    init: seedInitialization(),
    check: async (view, built) => {
      assert.equal(view.local_hostname, 'cloudInitInstanceName');
      assert.deepEqual(view.public_keys, [ROOT_KEY]);
      assert.equal(config(view, 'hostname'), 'cloudInitInstanceName');
      assert.equal(config(view, 'preserve_hostname'), false);
      assert.equal(config(view, 'timezone'), 'Asia/Jerusalem');
      assert.equal(config(view, 'disable_root'), false);
      assert.equal(config(view, 'ssh_pwauth'), true);
      assert.equal(config(view, 'ssh_deletekeys'), true);
      // root's password as hashed_passwd, the one form 20.4 to 26.x all set (users.ts).
      assert.equal(config(view, 'chpasswd'), undefined);
      const [root, ...others] = config(view, 'users') as Record<string, unknown>[];
      assert.deepEqual(others, []);
      assert.deepEqual(Object.keys(root ?? {}).sort(), ['hashed_passwd', 'lock_passwd', 'name']);
      assert.equal(root?.['name'], 'root');
      assert.equal(root?.['lock_passwd'], false);
      await assertHashOf(root?.['hashed_passwd'], SEED_PASSWORD);
      assert.equal(writtenFile(view, '/tmp/testFile1.txt').content, 'temp content');
      assert.deepEqual(view.users.users, ['root'], 'only root is named (it exists already: not created, password set and not locked)');
      const names = (view.network?.config ?? []).filter((c) => c.type === 'physical').map((c) => c.name);
      assert.deepEqual(names, ['eth0', 'eth1', 'eth2']);
      assert.doesNotMatch(textOf(built), new RegExp(SEED_PASSWORD));
    },
  },
  {
    name: 'a second user with password, key, groups and sudo is created, and only that user',
    init: initialization({
      users: [user('alice', { password: clearPassword(ALICE_PASSWORD), authorizedKeys: [OTHER_KEY], groups: ['adm', 'sudo'], sudo: true })],
    }),
    check: async (view) => {
      assert.deepEqual(view.users.users, ['alice']);
      const [alice] = config(view, 'users') as Record<string, unknown>[];
      assert.equal(alice?.['name'], 'alice');
      assert.equal(alice?.['lock_passwd'], false);
      assert.deepEqual(alice?.['ssh_authorized_keys'], [OTHER_KEY]);
      assert.deepEqual(alice?.['groups'], ['adm', 'sudo']);
      assert.equal(alice?.['sudo'], 'ALL=(ALL) NOPASSWD:ALL');
      await assertHashOf(alice?.['hashed_passwd'], ALICE_PASSWORD);
      assert.equal(config(view, 'disable_root'), undefined, 'root stays as the image has it');
      assert.deepEqual(view.public_keys, []);
    },
  },
  {
    name: 'an already-hashed password goes on the drive unchanged',
    init: initialization({ users: [user('root', { password: hashedPassword(SHA512_HASH) })] }),
    check: (view) => {
      const [root] = config(view, 'users') as Record<string, unknown>[];
      assert.equal(root?.['hashed_passwd'], SHA512_HASH);
    },
  },
  {
    name: 'host name with domain: fqdn set, /etc/hosts managed for localhost only',
    init: initialization({ hostName: 'web1', domain: 'example.com' }),
    check: (view) => {
      assert.equal(view.local_hostname, 'web1.example.com');
      assert.equal(config(view, 'fqdn'), 'web1.example.com');
      assert.equal(config(view, 'manage_etc_hosts'), 'localhost');
    },
  },
  {
    name: "host keys regenerated on a domain's first instance when the request does not say (clones must not share them)",
    init: initialization({ hostName: 'fresh' }),
    check: (view) => assert.equal(config(view, 'ssh_deletekeys'), true),
  },
  {
    name: 'host keys kept always when regenerate_ssh_keys is false',
    init: initialization({ hostName: 'keep', regenerateSshKeys: false }),
    check: (view) => assert.equal(config(view, 'ssh_deletekeys'), false),
  },
  {
    name: 'binary file content travels as base64, text with YAML syntax stays literal, modes as octal strings',
    init: initialization({
      files: [
        { path: '/opt/blob.bin', content: Uint8Array.from([0, 255, 1, 254, 10]), mode: 0o600, owner: 'root:root' },
        { path: '/etc/motd', content: new TextEncoder().encode('key: value\n- item\nruncmd: [reboot]\n"quoted" #not a comment\n'), mode: 0o644 },
      ],
    }),
    check: (view) => {
      const blob = writtenFile(view, '/opt/blob.bin');
      assert.equal(blob.encoding, 'b64');
      assert.deepEqual([...Buffer.from(blob.content, 'base64')], [0, 255, 1, 254, 10]);
      assert.equal(blob.permissions, '0600');
      assert.equal(blob.owner, 'root:root');
      const motd = writtenFile(view, '/etc/motd');
      assert.equal(motd.content, 'key: value\n- item\nruncmd: [reboot]\n"quoted" #not a comment\n');
      assert.equal(motd.permissions, '0644');
      assert.equal(config(view, 'runcmd'), undefined, 'file content cannot inject keys');
    },
  },
  {
    name: 'a cloud-config custom script is merged: its lists appended after ours',
    init: initialization({
      commands: ['echo ours'],
      customScript: '#cloud-config\nruncmd:\n  - echo theirs\npackages: [htop]\nwrite_files:\n  - path: /etc/theirs\n    content: hi\n',
    }),
    check: (view) => {
      assert.deepEqual(config(view, 'runcmd'), ['echo ours', 'echo theirs']);
      assert.deepEqual(config(view, 'packages'), ['htop']);
      assert.equal(writtenFile(view, '/etc/theirs').content, 'hi');
      assert.equal(view.mime_parts.length, 0, 'one plain cloud-config document');
    },
  },
  {
    name: 'a shell custom script becomes its own MIME part next to the generated cloud-config',
    init: initialization({ hostName: 'scripted', customScript: '#!/bin/sh\necho "--boundary-like line"\n--\nexit 0\n' }),
    check: (view) => {
      assert.deepEqual(view.mime_parts.map((p) => p.type), ['text/cloud-config', 'text/x-shellscript']);
      assert.equal(view.mime_parts[1]?.text, '#!/bin/sh\necho "--boundary-like line"\n--\nexit 0\n');
      assert.equal(config(view, 'hostname'), 'scripted');
    },
  },
  {
    name: 'locale, commands, power state and an instance-id override reach cloud-init',
    init: initialization({
      systemLocale: 'en_US.UTF-8',
      commands: ['touch /run/first-boot', 'echo "a: b" > /tmp/x'],
      powerState: { mode: 'reboot', delayMinutes: 0, message: 'configured' },
      instanceId: 'iid-renewed-1',
    }),
    check: (view, built) => {
      assert.equal(view.instance_id, 'iid-renewed-1');
      assert.equal(built.instanceId, 'iid-renewed-1');
      assert.equal(config(view, 'locale'), 'en_US.UTF-8');
      assert.deepEqual(config(view, 'runcmd'), ['touch /run/first-boot', 'echo "a: b" > /tmp/x']);
      assert.deepEqual(config(view, 'power_state'), { mode: 'reboot', delay: 'now', message: 'configured' });
    },
  },
  {
    name: 'empty settings still give a drive cloud-init accepts: meta_data and user_data, nothing empty',
    init: initialization(),
    check: (view, built) => {
      assert.deepEqual([...built.tree.keys()], ['openstack/latest/meta_data.json', 'openstack/latest/user_data']);
      for (const [path, bytes] of built.tree) assert.ok(bytes.length > 0, `${path} is empty`);
      // Not even root: any entry for it would make cloud-init lock or unlock it (users.ts).
      assert.deepEqual(config(view, 'users'), [[]]);
      assert.deepEqual(view.users.users, [], 'no default user, nobody created or touched');
    },
  },
];

describe('cloudinit drives, read back by cloud-init 22.4', function () {
  this.timeout(120_000);
  const built = CASES.map((c) => buildDriveTree(c.init, c === CASES[0] ? SEED_FACTS : facts({ nics: [{ mac: MAC0 }] })));
  let views: CloudInitView[] = [];

  before(async () => {
    views = await readWithCloudInit(built.map((b) => ({ tree: b.tree, macs: GUEST_MACS })));
  });

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const view = views[i];
      const drive = built[i];
      assert.ok(view !== undefined && drive !== undefined);
      assertSound(view, drive, c.init.instanceId ?? `${DOMAIN_UUID}-g1`);
      await c.check(view, drive);
    });
  });
});

describe('cloudinit drive invariants', () => {
  it("warns by name when the caller's cloud-config would replace or switch off the VM.initialized reporter", () => {
    const withKey = facts({ reportKey: '11'.repeat(32) });
    const own = buildDriveTree(initialization({ customScript: '#cloud-config\nbootcmd:\n  - [touch, /run/mine]\nvendor_data: {enabled: false}\n' }), withKey);
    assert.deepEqual(own.warnings.map((w) => /custom_script sets (\w+)/.exec(w)?.[1]), ['bootcmd', 'vendor_data']);
    assert.match(own.warnings[0] ?? '', /this guest will not report, and Payload\.get will show it pending/);
    assert.deepEqual(buildDriveTree(initialization({ customScript: '#cloud-config\nruncmd: [[touch, /run/x]]\n' }), withKey).warnings, []);
    assert.deepEqual(buildDriveTree(initialization({ customScript: '#cloud-config\nbootcmd: [[true]]\n' }), facts()).warnings, [], 'no reporter, nothing to warn about');
  });

  it('gives the same bytes for the same settings and domain', () => {
    const a = buildDriveTree(seedInitialization(), SEED_FACTS);
    const b = buildDriveTree(seedInitialization(), SEED_FACTS);
    assert.deepEqual([...a.tree.entries()], [...b.tree.entries()]);
  });

  it('salts per instance and per user, so equal passwords hash differently across VMs', () => {
    assert.notEqual(deriveSalt('vm-a', 'root'), deriveSalt('vm-b', 'root'));
    assert.notEqual(deriveSalt('vm-a', 'root'), deriveSalt('vm-a', 'alice'));
    assert.match(deriveSalt('vm-a', 'root'), /^[./0-9A-Za-z]{16}$/);
  });

  it('never shows a clear password when the settings or the result are printed', () => {
    const init = seedInitialization();
    const built = buildDriveTree(init, SEED_FACTS);
    for (const shown of [JSON.stringify(init), inspect(init, { depth: 10 }), String(init.users[0]?.password?.value), inspect(built, { depth: 10 })]) {
      assert.doesNotMatch(shown, new RegExp(SEED_PASSWORD));
    }
  });

  it('reports a custom script that conflicts with the settings, naming the key', () => {
    const init = initialization({ timezone: 'Asia/Jerusalem', customScript: 'timezone: UTC\n' });
    assert.throws(
      () => buildDriveTree(init, facts()),
      (err: unknown) =>
        err instanceof AgentError &&
        err.code === 'INVALID_INITIALIZATION' &&
        err.problems.some((p) => p.path === 'custom_script.timezone' && /Asia\/Jerusalem/.test(p.message)),
    );
  });

  it('rejects a custom script that is neither cloud-config nor a script', () => {
    assert.throws(
      () => buildDriveTree(initialization({ customScript: 'just some words' }), facts()),
      (err: unknown) => err instanceof AgentError && err.problems[0]?.path === 'custom_script',
    );
  });

  it('rejects a custom cloud-config whose aliases expand without bound, quickly', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const bomb = `#cloud-config\n${levels.join('\n')}\n`;
    const started = process.hrtime.bigint();
    assert.throws(
      () => buildDriveTree(initialization({ customScript: bomb }), facts()),
      (err: unknown) => err instanceof AgentError && err.problems[0]?.path === 'custom_script' && /expands to more than/.test(err.message),
    );
    // A hang guard only: the expansion would be 10^9 values.
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n);
  });

  it('rejects a malformed pre-hashed password, naming the user without showing the value', () => {
    const secret = 'not a hash: with colon';
    assert.throws(
      () => buildDriveTree(initialization({ users: [user('bob', { password: hashedPassword(secret) })] }), facts()),
      (err: unknown) =>
        err instanceof AgentError &&
        err.problems[0]?.path === 'users[0].password' &&
        !JSON.stringify({ m: err.message, p: err.problems }).includes(secret),
    );
  });

  it('puts an SSH key line with options on the drive as written, and refuses a malformed one naming its field', () => {
    const line = `from="10.0.0.0/8",no-pty ${OTHER_KEY}`;
    const userData = Buffer.from(buildDriveTree(initialization({ users: [user('alice', { authorizedKeys: [line] })] }), facts()).tree.get('openstack/latest/user_data')!).toString();
    assert.ok(userData.includes(JSON.stringify(line)), userData);
    assert.throws(
      () => buildDriveTree(initialization({ users: [user('alice', { authorizedKeys: [line, `from=10.0.0.0/8 ${OTHER_KEY}`] })] }), facts()),
      (err: unknown) =>
        err instanceof AgentError && err.code === 'INVALID_INITIALIZATION' && err.problems.length === 1 && err.problems[0]?.path === 'users[0].ssh_authorized_keys[1]',
    );
  });
});

/**
 * The first file of oVirt's files list: user data only when cloud-init would read it as
 * cloud-config, written to its path otherwise, with a warning that says which; its
 * problems name the field the caller sent.
 */
import assert from 'node:assert/strict';
import { buildDriveTree } from '../../src/cloudinit/drive.js';
import { AgentError } from '../../src/errors.js';
import { inCallerTerms, parseInitialization } from '../../src/initialization/index.js';
import { facts } from '../helpers/initialization.js';

/** An SDK v3 action whose cloud_init has one file. */
const action = (name: string, content: string, type = 'PLAINTEXT', extra = '') =>
  `<action><vm><initialization><cloud_init><host><address>web1</address></host>${extra}<files><file><name>${name}</name><content>${content}</content><type>${type}</type></file></files></cloud_init></initialization></vm></action>`;
const FILE = '/action/vm/initialization/cloud_init/files/file[0]';

describe('initialization: the first file', () => {
  it("writes an application's YAML config to its path: port is no cloud-init module's key", () => {
    const parsed = parseInitialization(action('/etc/myapp/config.yaml', 'port: 8080\nlisten: 0.0.0.0'));
    assert.equal(parsed.initialization.customScript, undefined);
    assert.deepEqual(parsed.initialization.files.map((f) => [f.path, Buffer.from(f.content).toString()]), [['/etc/myapp/config.yaml', 'port: 8080\nlisten: 0.0.0.0']]);
    assert.deepEqual(parsed.warnings, [`${FILE} is written to /etc/myapp/config.yaml, not taken as the user data: "port", "listen" are no cloud-init module's key (oVirt engine takes a first file as the custom script; start it with #cloud-config for that)`]);
  });

  const USER_DATA: [string, string, string][] = [
    ['#cloud-config', '#cloud-config\nport: 8080', 'it starts with #cloud-config'],
    ["cloud-init's own header test (white space first, any case)", '\n  #Cloud-Config\nruncmd: [true]', 'it starts with #cloud-config'],
    ['only module keys', 'runcmd: [true]\nwrite_files: []', 'every top-level key ("runcmd", "write_files") is a cloud-init module\'s'],
  ];
  for (const [what, content, why] of USER_DATA) {
    it(`takes it as the user data for ${what}`, () => {
      const parsed = parseInitialization(action('/etc/x.cfg', content));
      assert.equal(parsed.initialization.customScript, content);
      assert.deepEqual(parsed.initialization.files, []);
      assert.deepEqual(parsed.warnings, [`${FILE} is taken as the user data, not written to /etc/x.cfg: ${why}, so cloud-init reads it as cloud-config`]);
    });
  }

  const FILES: [string, string, string][] = [
    ['a script', '#!/bin/sh\necho hi', 'it is not a YAML mapping'],
    ['#cloud-config-archive, another part type', '#cloud-config-archive\n- type: text/x-shellscript', 'it is not a YAML mapping'],
    ['BASE64 content', Buffer.from('runcmd: [true]').toString('base64'), 'its content is BASE64'],
  ];
  for (const [what, content, why] of FILES) {
    it(`writes ${what} to its path`, () => {
      const parsed = parseInitialization(action('/etc/x', content, what.startsWith('BASE64') ? 'BASE64' : 'PLAINTEXT'));
      assert.equal(parsed.initialization.customScript, undefined);
      assert.deepEqual(parsed.initialization.files.map((f) => f.path), ['/etc/x']);
      assert.match(parsed.warnings.join('\n'), new RegExp(`is written to /etc/x, not taken as the user data: ${why.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    });
  }

  it('says nothing of a plain-text first file outside cloud_init, where oVirt has no rule', () => {
    const parsed = parseInitialization('<initialization><files><file><name>/etc/motd</name><content>hello</content></file></files></initialization>');
    assert.deepEqual(parsed.warnings, []);
    assert.deepEqual(parsed.initialization.files.map((f) => f.path), ['/etc/motd']);
  });

  it('refuses cloud-config in the first file beside a custom_script, naming both fields', () => {
    try {
      parseInitialization('<initialization><custom_script>#!/bin/sh</custom_script><files><file><name>/x</name><content>#cloud-config</content></file></files></initialization>');
      assert.fail('accepted two user data');
    } catch (err) {
      assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION');
      assert.deepEqual(err.problems, [{ path: '/initialization/files/file[0]/content', message: 'is cloud-config (it starts with #cloud-config), which would be the user data, but /initialization/custom_script already is: give one of them' }]);
    }
  });

  it('reports a conflict inside a first file at the content the caller sent, not at custom_script', async () => {
    const parsed = parseInitialization(action('/etc/x.cfg', 'hostname: other'));
    await assert.rejects(
      inCallerTerms(parsed.sources, () => Promise.resolve(buildDriveTree(parsed.initialization, facts()))),
      (err: unknown) => {
        assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION');
        assert.deepEqual(err.problems.map((p) => p.path), [`${FILE}/content`]);
        assert.match(err.problems[0]!.message, /^at key hostname of its content: conflicts with hostname "web1"/);
        assert.match(err.message, new RegExp(`^Cannot build the config drive: ${FILE.replace(/[[\]]/g, '\\$&')}/content: at key hostname`));
        return true;
      },
    );
  });
});

/**
 * docs/initialization.md is the native schema's reference: its example must parse, and
 * mean what the page says it means.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInitialization } from '../../src/initialization/index.js';

const page = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/initialization.md'), 'utf8');

describe('docs/initialization.md', () => {
  it("has a native example that parses with every field it shows", () => {
    const block = /```yaml\n([\s\S]*?)```/.exec(page)?.[1];
    assert.ok(block !== undefined, 'the page has a yaml example');
    const { initialization: init, warnings } = parseInitialization(block);
    assert.deepEqual(warnings, []);
    assert.equal(init.hostName, 'web-1');
    assert.equal(init.instanceId, 'web-1-rebuild-2');
    assert.deepEqual(init.users.map((u) => [u.name, u.password?.kind, u.authorizedKeys.length, u.sudo]), [
      ['root', 'clear', 1, false],
      ['alice', 'hashed', 0, true],
    ]);
    assert.deepEqual(init.nics.map((n) => [n.name, n.mac, n.ipv4.boot, n.ipv6.boot]), [
      ['eth0', '52:54:00:12:34:56', 'static', 'static'],
      ['eth1', undefined, 'dhcp', 'autoconf'],
    ]);
    assert.equal(init.files[0]?.mode, 0o644);
    assert.equal(init.powerState?.mode, 'reboot');
    assert.match(init.customScript ?? '', /^#!\/bin\/sh/);
  });
});

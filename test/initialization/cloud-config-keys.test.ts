/**
 * The module keys the first-file rule trusts are cloud-init's own: the generated list
 * matches the schemas of the releases the tests read drives with.
 */
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLOUD_CONFIG_MODULE_KEYS } from '../../src/initialization/cloud-config-keys.js';
import { run } from '../helpers/tools.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('cloud-config module keys', () => {
  it("is what tools/cloud-config-keys reads from every release's schema today", async () => {
    await run('/bin/bash', [join(ROOT, 'tools/cloud-config-keys'), '--check'], { timeout: 600_000 });
  });

  it("holds the modules' keys and none of cloud-init's own settings", () => {
    for (const key of ['runcmd', 'write_files', 'users', 'bootcmd', 'ssh_authorized_keys']) assert.ok(CLOUD_CONFIG_MODULE_KEYS.has(key), key);
    for (const key of ['merge_how', 'system_info', 'reporting', 'version', 'port']) assert.ok(!CLOUD_CONFIG_MODULE_KEYS.has(key), key);
  });
});

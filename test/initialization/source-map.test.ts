/**
 * Problems found after parsing (by the translators, which speak the native schema) reach
 * the caller at the field it sent, in the form it sent it, for every input form; and a
 * build that fails leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriveTree } from '../../src/cloudinit/drive.js';
import { AgentError } from '../../src/errors.js';
import { inCallerTerms, parseInitialization, parseInitializationValue } from '../../src/initialization/index.js';
import type { ParsedInitialization } from '../../src/initialization/types.js';
import { runBuildJobToFile } from '../../src/payload/build-job.js';
import { DOMAIN_UUID, facts } from '../helpers/initialization.js';

const DOMAIN = facts({ nics: [{ mac: '52:54:00:00:00:01' }] });
const OTHER_MAC = '52:54:00:00:00:99';

async function buildProblems(parsed: ParsedInitialization): Promise<string[]> {
  try {
    await inCallerTerms(parsed.sources, () => Promise.resolve(buildDriveTree(parsed.initialization, DOMAIN)));
  } catch (err) {
    assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION', `unexpected ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('built without a problem');
}

const NOT_ON_DOMAIN = `${OTHER_MAC} is not one of the domain's NICs (52:54:00:00:00:01)`;

describe("initialization: problems after parsing, in the caller's vocabulary", () => {
  const MAC_CASES: [string, () => ParsedInitialization, string][] = [
    ['oVirt REST XML', () => parseInitialization(`<vm><initialization><nic_configurations><nic_configuration><name>eth0</name><mac><address>${OTHER_MAC}</address></mac></nic_configuration></nic_configurations></initialization></vm>`), '/vm/initialization/nic_configurations/nic_configuration[0]/mac/address'],
    ['SDK v3 XML, the MAC an attribute', () => parseInitialization(`<action><vm><initialization><cloud_init><network_configuration><nics><nic><name>eth0</name><mac address="${OTHER_MAC}"/></nic></nics></network_configuration></cloud_init></initialization></vm></action>`), '/action/vm/initialization/cloud_init/network_configuration/nics/nic[0]/mac/@address'],
    ['oVirt REST JSON', () => parseInitialization(JSON.stringify({ vm: { initialization: { nic_configurations: { nic_configuration: [{ name: 'eth0', mac: { address: OTHER_MAC } }] } } } })), 'vm.initialization.nic_configurations.nic_configuration[0].mac.address'],
    ['oVirt JSON with one NIC not in a list', () => parseInitializationValue({ initialization: { nic_configurations: { nic_configuration: { name: 'eth0', mac: { address: OTHER_MAC } } } } }), 'initialization.nic_configurations.nic_configuration.mac.address'],
    ['native YAML', () => parseInitialization(`configdrive: 1\nnics:\n  - name: eth0\n    mac: "${OTHER_MAC}"\n`), 'nics[0].mac'],
  ];
  for (const [form, parse, path] of MAC_CASES) {
    it(`reports a MAC the domain lacks at the MAC sent, for ${form}`, async () => {
      assert.deepEqual(await buildProblems(parse()), [`${path}: ${NOT_ON_DOMAIN}`]);
    });
  }

  it('reports a NIC that cannot be placed at its element, counting only the NICs it sent', async () => {
    const parsed = parseInitialization('<vm><initialization><cloud_init><network_configuration><nics><nic><name>eth0</name></nic><nic><name>eth7</name></nic></nics></network_configuration></cloud_init></initialization></vm>');
    assert.deepEqual(await buildProblems(parsed), ['/vm/initialization/cloud_init/network_configuration/nics/nic[1]: eth7 would be NIC number 8 but the domain has 1 NIC and no mac was given']);
  });

  it('reports a bad custom script at custom_script as sent, in XML and JSON', async () => {
    const script = '#cloud-config\nruncmd: [unclosed';
    assert.match((await buildProblems(parseInitialization(`<initialization><custom_script>${script}</custom_script></initialization>`)))[0]!, /^\/initialization\/custom_script: is not valid YAML/);
    assert.match((await buildProblems(parseInitializationValue({ vm: { initialization: { custom_script: script } } })))[0]!, /^vm\.initialization\.custom_script: is not valid YAML/);
  });

  it('reports a conflict inside a custom script at the script, naming the key in the message', async () => {
    const problems = await buildProblems(parseInitialization('<initialization><timezone>Asia/Jerusalem</timezone><custom_script>timezone: UTC</custom_script></initialization>'));
    assert.deepEqual(problems, ['/initialization/custom_script: at key timezone of its content: conflicts with timezone "Asia/Jerusalem" (set by the request\'s own settings); got "UTC"']);
  });

  it('names the other NIC by its name when two resolve to one MAC', async () => {
    const parsed = parseInitialization('<initialization><nic_configurations><nic_configuration><name>eth0</name></nic_configuration><nic_configuration><name>lan</name><mac><address>52:54:00:00:00:01</address></mac></nic_configuration></nic_configurations></initialization>');
    assert.deepEqual(await buildProblems(parsed), ['/initialization/nic_configurations/nic_configuration[1]: has the same MAC 52:54:00:00:00:01 as NIC "eth0"']);
  });

  it('fails a daemon build job at the XML path and writes no file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'source-map-'));
    try {
      const document = `<action><vm><initialization><nic_configurations><nic_configuration><name>eth0</name><mac><address>${OTHER_MAC}</address></mac></nic_configuration></nic_configurations></initialization></vm></action>`;
      const job = { source: { kind: 'initialization' as const, document }, facts: { ...DOMAIN, uuid: DOMAIN_UUID }, label: 'config-2', writer: 'builtin' as const };
      await assert.rejects(runBuildJobToFile(job, { dir }), (err: unknown) => {
        assert.ok(err instanceof AgentError && err.code === 'INVALID_INITIALIZATION');
        assert.deepEqual(err.problems, [{ path: '/action/vm/initialization/nic_configurations/nic_configuration[0]/mac/address', message: NOT_ON_DOMAIN }]);
        assert.equal(err.message, `Cannot build the config drive: /action/vm/initialization/nic_configurations/nic_configuration[0]/mac/address: ${NOT_ON_DOMAIN}`);
        return true;
      });
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

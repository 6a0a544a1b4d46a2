import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_TABLE, RELOADABLE_KEYS, applyReloadable, configTableMarkdown, loadConfig, needingRestart, printConfig, type ReloadAppliers, type ReloadableKey } from '../../src/config/config.js';
import { AgentError } from '../../src/errors.js';

const DOC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/configuration.md');

describe('config', () => {
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the documented defaults when the file is missing', async () => {
    const { config, sources } = await loadConfig(join(dir, 'missing.yaml'), {});
    assert.equal(config.uri, 'qemu:///system');
    assert.equal(config.socketMode, 0o660);
    assert.equal(sources.uri, 'default');
  });

  it('applies the file, then drop-ins in lexical order, then flags, and says where each value came from', async () => {
    const file = join(dir, 'configdrived.yaml');
    writeFileSync(file, 'maxInFlight: 8\nlogLevel: debug\nsocketMode: "0600"\n');
    mkdirSync(`${file}.d`);
    writeFileSync(join(`${file}.d`, '20-b.yaml'), 'maxInFlight: 32\n');
    writeFileSync(join(`${file}.d`, '10-a.yaml'), 'maxInFlight: 16\nisoWriter: genisoimage\n');
    writeFileSync(join(`${file}.d`, 'ignored.txt'), 'not: yaml: at all: [');
    const { config, sources } = await loadConfig(file, { logLevel: 'warning' });
    assert.equal(config.maxInFlight, 32);
    assert.equal(sources.maxInFlight, join(`${file}.d`, '20-b.yaml'));
    assert.equal(config.isoWriter, 'genisoimage');
    assert.equal(config.logLevel, 'warning');
    assert.equal(sources.logLevel, 'command line');
    assert.equal(config.socketMode, 0o600);
    assert.match(printConfig(config, sources), /^maxInFlight: 32 {2}# from .*20-b\.yaml$/m);
    assert.match(printConfig(config, sources), /^socketMode: "0600" {2}# from .*configdrived\.yaml$/m);
  });

  it('names every bad or unknown key with its file', async () => {
    const file = join(dir, 'configdrived.yaml');
    writeFileSync(file, 'maxConnections: -1\nsocket: relative/path\nnotAKey: 1\nlogLevel: loud\n');
    await assert.rejects(loadConfig(file, {}), (e: unknown) => {
      assert.ok(e instanceof AgentError && e.code === 'CONFIG_INVALID');
      const shown = e.problems.map((p) => `${p.path} ${p.message}`);
      assert.deepEqual(shown, [
        `${file}: maxConnections expected a positive integer`,
        `${file}: socket expected an absolute path`,
        `${file}: notAKey is not a known setting`,
        `${file}: logLevel expected error, warning, info or debug`,
      ]);
      return true;
    });
  });

  it('reports a file that is not YAML', async () => {
    const file = join(dir, 'configdrived.yaml');
    writeFileSync(file, 'a: [unclosed\n');
    await assert.rejects(loadConfig(file, {}), /is not valid YAML/);
  });

  it("hands every key the table marks reloadable, and only those, to the daemon's appliers; others are reported as needing a restart", async () => {
    assert.deepEqual(RELOADABLE_KEYS, Object.entries(CONFIG_TABLE).flatMap(([key, spec]) => (spec.reload ? [key] : [])));
    const file = join(dir, 'configdrived.yaml');
    writeFileSync(file, 'maxInFlight: 8\nimageDirs: [/srv/drives]\nuri: "qemu:///embed?root=/tmp/x"\nbuildThreads: 0\n');
    const { config: running } = await loadConfig(join(dir, 'missing.yaml'), {});
    const { config: next } = await loadConfig(file, {});
    const applied = new Map<string, unknown>();
    const record = (key: ReloadableKey) => (value: unknown) => applied.set(key, value);
    const appliers = Object.fromEntries(RELOADABLE_KEYS.map((k) => [k, record(k)])) as unknown as ReloadAppliers;
    applyReloadable(next, appliers);
    assert.deepEqual([...applied.keys()], RELOADABLE_KEYS);
    assert.equal(applied.get('maxInFlight'), 8);
    assert.deepEqual(applied.get('imageDirs'), ['/srv/drives']);
    assert.deepEqual(needingRestart(running, next), ['uri', 'buildThreads']);
    assert.deepEqual(needingRestart(running, running), []);
  });

  it('keeps docs/configuration.md in sync with the table', () => {
    const doc = readFileSync(DOC, 'utf8');
    assert.ok(doc.includes(configTableMarkdown()), 'regenerate the table in docs/configuration.md from configTableMarkdown()');
    for (const key of Object.keys(CONFIG_TABLE)) assert.ok(doc.includes(`\`${key}\``));
  });
});

/**
 * What the Debian package generates stays in step with the code: the man pages carry
 * every line and option the programs print for --help (whatever the CLI prints today),
 * render without a groff warning, and the default /etc/configdrived/configdrived.yaml
 * lists every key of CONFIG_TABLE with its default.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CONFIG_TABLE, loadConfig } from '../../src/config/config.js';
import { run } from '../helpers/tools.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const AGENT = resolve(HERE, '../../agent');
const TOOLS = join(ROOT, 'tools/package');
const DEFAULT_YAML = join(TOOLS, 'configdrived.yaml');

async function help(program: string, args: string[] = []): Promise<string> {
  return run(process.execPath, [join(AGENT, `${program}.js`), ...args, '--help']);
}

/** Every help text the man pages are made from, by page. */
async function helpTexts(): Promise<{ 'configdrived.8': string[]; 'configdrive.1': string[] }> {
  const main = await help('configdrive');
  const list = /^Commands:\n((?: {2}\S.*\n)+)/m.exec(main)?.[1];
  assert.ok(list, `configdrive --help lists no commands:\n${main}`);
  const commands = list.split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/)[0]!);
  return { 'configdrived.8': [await help('configdrived')], 'configdrive.1': [main, ...(await Promise.all(commands.map((c) => help('configdrive', [c]))))] };
}

const normalize = (text: string) => text.replace(/\s+/g, ' ').trim().toLowerCase();

describe('generated package files in sync with the code', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'package-sync-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes man pages that render without warnings and keep every line and option of --help', async () => {
    await run(process.execPath, [join(TOOLS, 'man-pages.mjs'), AGENT, dir, '0.0.0-test', '2026-01-01']);
    const texts = await helpTexts();
    for (const [page, helps] of Object.entries(texts)) {
      const file = join(dir, page);
      const groff = await execa('groff', ['-man', '-Tutf8', '-ww', '-z', file], { reject: false });
      assert.equal(groff.exitCode, 0, groff.stderr);
      assert.equal(groff.stderr, '', `${page}: groff warns`);
      const man = await execa('man', ['--warnings', '-E', 'UTF-8', '-l', file], { reject: false, env: { MANWIDTH: '100', LC_ALL: 'C.UTF-8' } });
      assert.equal(man.exitCode, 0, man.stderr);
      assert.equal(man.stderr, '', `${page}: man warns`);
      assert.match(man.stdout, new RegExp(`^${page.replace(/\.(\d)$/, '').toUpperCase()}\\(${page.slice(-1)}\\)`), `${page}: the title line`);
      const rendered = normalize(man.stdout);
      const words = new Set(man.stdout.split(/[^\w-]+/));
      for (const text of helps) {
        for (const option of new Set(text.match(/(?<![\w-])--?[a-zA-Z][\w-]*/g) ?? [])) assert.ok(words.has(option), `${page} lacks ${option}`);
        for (const line of text.split('\n').map(normalize).filter(Boolean)) {
          // What the page shows in its own way: "Usage:" is the SYNOPSIS, a "Heading:" or
          // "Label: text" at the top of a page is a section title.
          const shown = [line, line.replace(/^usage: /, ''), line.replace(/^[a-z]+(?: [a-z]+)?: /, ''), line.replace(/:$/, '')];
          assert.ok(shown.some((s) => rendered.includes(s)), `${page} lacks this line of --help: ${line}`);
        }
      }
    }
  });

  it('keeps tools/package/configdrived.yaml as generated from CONFIG_TABLE', async () => {
    const generated = await run(process.execPath, [join(TOOLS, 'default-config.mjs'), resolve(HERE, '../../src/config/config.js')]);
    assert.equal(readFileSync(DEFAULT_YAML, 'utf8'), generated, 'regenerate it: node tools/package/default-config.mjs > tools/package/configdrived.yaml');
  });

  it('lists every key once with its default, all commented out', async () => {
    const text = readFileSync(DEFAULT_YAML, 'utf8');
    assert.ok(text.split('\n').every((line) => line === '' || line.startsWith('#')), 'nothing is set');
    const settings = text.split('\n').filter((line) => /^#[a-zA-Z]+: /.test(line));
    assert.deepEqual(settings.map((line) => line.slice(1).split(':')[0]), Object.keys(CONFIG_TABLE));
    // Uncommented, the file sets each key to the value the daemon has without it.
    const file = join(dir, 'uncommented.yaml');
    writeFileSync(file, settings.map((line) => line.slice(1)).join('\n'));
    const set = await loadConfig(file, {});
    const none = await loadConfig(join(dir, 'missing.yaml'), {});
    assert.deepEqual(set.config, none.config);
    assert.ok(Object.values(set.sources).every((source) => source === file), 'every key was read from the file');
  });
});

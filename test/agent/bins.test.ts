// The commands package.json names as bins run as programs, not only through `node FILE`:
// npx, a global install and the Debian package all exec the file itself, and tsc writes
// it without the execute bits (a clean clone's `npx configdrived` failed with EACCES).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bins = Object.entries((JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin);

describe('the package\'s commands', () => {
  it('names both commands', () => {
    assert.deepEqual(bins.map(([name]) => name).sort(), ['configdrive', 'configdrived']);
  });

  for (const [name, file] of bins) {
    it(`${name}: built executable by everyone, with a node shebang, and answers --help when exec'd`, async () => {
      const path = resolve(ROOT, file);
      assert.equal(statSync(path).mode & 0o111, 0o111, `${file} has the execute bits`);
      assert.match(readFileSync(path, 'utf8'), /^#!\/usr\/bin\/env node\n/);
      const help = await execa(path, ['--help'], { reject: false });
      assert.equal(help.exitCode, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: ${name}\\b`, 'm'));
    });
  }
});

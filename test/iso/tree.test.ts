import assert from 'node:assert/strict';
import { AgentError } from '../../src/errors.js';
import { validateVolumeId, writeIsoImage, writeWithGenisoimage } from '../../src/iso/index.js';

const one = new Uint8Array(1);

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AgentError && err.code === 'INVALID_TREE', String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('no error');
}

describe('iso tree validation', () => {
  it('accepts config-2 and other printable labels up to 32 bytes', () => {
    for (const label of ['config-2', 'CONFIG_2', 'a', 'x'.repeat(32), 'cidata']) validateVolumeId(label);
  });

  it('rejects empty, long, non-ASCII and control-character labels with INVALID_LABEL', () => {
    for (const label of ['', 'x'.repeat(33), 'configé', 'config\n2', 'trailing ']) {
      assert.throws(() => validateVolumeId(label), (e: unknown) => e instanceof AgentError && e.code === 'INVALID_LABEL');
    }
  });

  it('lists every bad path at once, each named', () => {
    const problems = problemsOf(() =>
      writeIsoImage({
        files: new Map([
          ['/etc/passwd', one],
          ['a/../b', one],
          ['a//b', one],
          ['nul\0name', one],
          ['x'.repeat(65), one],
          ['what?', one],
          ['lone\uD800', one],
        ]),
      }),
    );
    assert.equal(problems.length, 7);
    assert.match(problems[0]!, /^files\["\/etc\/passwd"\]: .* is absolute/);
    assert.match(problems[1]!, /contains "\.\."/);
    assert.match(problems[2]!, /empty name/);
    assert.match(problems[3]!, /NUL/);
    assert.match(problems[4]!, /Joliet limit/);
    assert.match(problems[5]!, /Joliet does not allow/);
    assert.match(problems[6]!, /lone surrogate/);
  });

  it('rejects a name that is a file and a directory at once', () => {
    const problems = problemsOf(() => writeIsoImage({ files: new Map([['a', one], ['a/b', one]]) }));
    assert.match(problems.join('\n'), /"a" is a file and a directory at once/);
  });

  it('applies the same checks in the genisoimage writer before staging anything', async () => {
    await assert.rejects(writeWithGenisoimage({ files: new Map([['../escape', one]]) }), (e: unknown) => e instanceof AgentError && e.code === 'INVALID_TREE');
    await assert.rejects(writeWithGenisoimage({ files: new Map() }, { volumeId: '' }), (e: unknown) => e instanceof AgentError && e.code === 'INVALID_LABEL');
  });
});

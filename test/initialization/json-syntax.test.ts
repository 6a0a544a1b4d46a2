/**
 * The JSON syntax locator behind every "is not valid JSON" message: it agrees with V8's
 * JSON.parse on what is valid and on where an error is, and never quotes the text.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jsonErrorText, jsonSyntaxError } from '../../src/initialization/json-syntax.js';

/** V8's position, when its message gives one (it quotes the text instead for some errors). */
function v8Position(text: string): number | 'valid' | undefined {
  try {
    JSON.parse(text);
    return 'valid';
  } catch (err) {
    const m = /at position (\d+)/.exec((err as Error).message);
    return m === null ? undefined : Number(m[1]);
  }
}

describe('JSON syntax errors by position', () => {
  it('finds the first byte that cannot continue the text, and says why in fixed words', () => {
    const cases: [string, number, string][] = [
      ['{"a": myPass}', 6, 'unexpected character'],
      ['{"a":1,}', 7, 'expected a property name in double quotes'],
      ['{"a" 1}', 5, "expected ':' after a property name"],
      ['[1 2]', 3, "expected ',' or ']'"],
      ['{"a":1 "b"}', 7, "expected ',' or '}'"],
      ['"abc', 4, 'unterminated string'],
      ['{"a":"\u0001"}', 6, 'control character in a string'],
      ['{"a":"\\x"}', 7, 'invalid escape in a string'],
      ['"\\u12g4"', 5, 'invalid \\u escape in a string'],
      ['1 2', 2, 'unexpected data after the value'],
      ['', 0, 'unexpected end of input'],
      ['{"a": tru', 9, 'unexpected end of input'],
      ['{"a": trUe}', 8, 'unexpected character'],
      ['-', 1, 'unexpected end of input'],
      ['-x', 1, 'invalid number'],
      ['1.e5', 2, 'invalid number'],
      ['01', 1, 'unexpected data after the value'],
      ['{"é": x}', 7, 'unexpected character'],
    ];
    for (const [text, byte, reason] of cases) assert.deepEqual(jsonSyntaxError(text), { byte, reason }, text);
    assert.equal(jsonSyntaxError('{"a": [1, 2.5e-3, true, false, null, "\\u00e9\\n"], "b": {}}'), undefined);
  });

  it('scans 2,000,000 levels of unclosed nesting without recursion', () => {
    assert.deepEqual(jsonSyntaxError('['.repeat(2_000_000)), { byte: 2_000_000, reason: 'unexpected end of input' });
  });

  it('agrees with JSON.parse on validity and on V8\'s position for mutated JSON texts (fast-check)', () => {
    const mutated = fc.tuple(fc.json({ maxDepth: 4 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('', ',', '"', '\\', '{', '}', '[', ']', ':', 'x', '-', '.', 'e', ' ', '\u0001', 't')), { maxLength: 3 })).map(([text, edits]) => {
      let t = text;
      for (const [at, insert] of edits) {
        const i = t.length === 0 ? 0 : at % (t.length + 1);
        t = `${t.slice(0, i)}${insert}${t.slice(i + (insert === '' ? 1 : 0))}`;
      }
      return t;
    });
    let compared = 0;
    fc.assert(
      fc.property(mutated, (text) => {
        const v8 = v8Position(text);
        const ours = jsonSyntaxError(text);
        if (v8 === 'valid') return assert.equal(ours, undefined, text);
        assert.notEqual(ours, undefined, text);
        if (v8 !== undefined && Buffer.byteLength(text) === text.length) {
          compared++;
          assert.equal(ours!.byte, v8, text);
        }
        return undefined;
      }),
      { numRuns: 5000, seed: 16 },
    );
    assert.ok(compared > 1000, `only ${String(compared)} positions compared`);
  });

  it('never includes a byte of the text in its message', () => {
    const secret = 'Sup3r-Secret';
    for (const text of [`{"password": ${secret}}`, `{"password": "${secret}`, `["${secret}" "${secret}"]`]) {
      const shown = jsonErrorText(text);
      assert.match(shown, /^ at byte \d+: [a-z ',:\]}\\]+$/);
      assert.ok(!shown.includes('Sup3r'), shown);
    }
  });
});

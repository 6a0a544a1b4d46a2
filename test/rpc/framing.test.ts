/**
 * The line framer and the id rule for lines that cannot be read as requests: a bounded
 * prefix scan, never a parse of the whole line.
 */
import assert from 'node:assert/strict';
import { ID_PREFIX_BYTES, leadingId, LineFramer } from '../../src/rpc/framing.js';

describe('line framing', () => {
  it('takes the id from the start of a line only: {"id": ID or {"jsonrpc": "2.0", "id": ID, a number or a plain string', () => {
    const cases: [string, string | number | null][] = [
      ['{"jsonrpc":"2.0","id":12,"method":', 12],
      [' { "jsonrpc" : "2.0" , "id" : -3.5e2 , ', -350],
      ['{"id":"abc-1","jsonrpc":"2.0"', 'abc-1'],
      ['{"id":7}', 7],
      ['{"method":"x","id":1,', null],
      ['{"jsonrpc":"1.0","id":1,', null],
      ['{"jsonrpc":"2.0","id":12', null],
      ['{"id":"a\\"b",', null],
      ['{"id":"a\u0001b",', null],
      ['{"id":01,', null],
      ['{"id":[1],', null],
      ['[{"id":1,', null],
      [`{"jsonrpc":"2.0",${' '.repeat(ID_PREFIX_BYTES)}"id":1,`, null],
    ];
    for (const [line, id] of cases) assert.equal(leadingId(line), id, line);
  });

  it('reports an oversized line once, with its id, without keeping it, then frames the next line', () => {
    const framer = new LineFramer(100);
    const events = [...framer.push(Buffer.from(`{"jsonrpc":"2.0","id":5,"p":"${'x'.repeat(60)}`)), ...framer.push(Buffer.from('y'.repeat(1_000_000)))];
    assert.deepEqual(events, [{ kind: 'oversized', bytes: 1_000_089, id: 5 }]);
    assert.equal(framer.pending, 0, 'the rest of the line is skipped, not held');
    assert.deepEqual(framer.push(Buffer.from('tail\n{"ok":1}\n')), [{ kind: 'frame', text: '{"ok":1}' }]);
  });

  it('frames one line at a time from what was fed, as a connection takes them', () => {
    const framer = new LineFramer(1000);
    framer.feed(Buffer.from('{"a":1}\n\n{"b"'));
    framer.feed(Buffer.from(':2}\n{"c":3}\n'));
    assert.deepEqual([framer.next(), framer.next(), framer.next(), framer.next()], [{ kind: 'frame', text: '{"a":1}' }, { kind: 'frame', text: '{"b":2}' }, { kind: 'frame', text: '{"c":3}' }, undefined]);
  });

  it('refuses a line that is not UTF-8, and frames a last line without a newline on flush', () => {
    const framer = new LineFramer(1000);
    assert.deepEqual(framer.push(Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x39, 0x2c, 0xc3, 0x28, 0x0a])), [{ kind: 'invalid-utf8', id: 9 }]);
    assert.deepEqual(framer.push(Buffer.from('{"a":')), []);
    assert.deepEqual(framer.push(Buffer.from('1}\r')), []);
    assert.deepEqual(framer.flush(), { kind: 'frame', text: '{"a":1}' });
    assert.equal(framer.flush(), undefined, 'nothing is left after a flush');
    assert.deepEqual(framer.push(Buffer.from('  \r\n\n')), [], 'blank lines are not frames');
  });
});

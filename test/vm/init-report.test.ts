/**
 * The guest's report line is hostile input: only a bounded, well-formed line bound to
 * the current drive by instance-id and nonce is taken; everything else is refused with
 * a reason that never repeats what the guest sent.
 */
import assert from 'node:assert/strict';
import { MAX_REPORT_BYTES } from '../../src/cloudinit/index.js';
import { cloudInitSeconds, judgeReport, ReportLines } from '../../src/vm/init-report.js';

const EXPECTED = { instanceId: '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b-g1', nonce: 'a'.repeat(32) };
const GOOD = {
  v: 1,
  instanceId: EXPECTED.instanceId,
  nonce: EXPECTED.nonce,
  status: 'done',
  errors: [],
  stages: { 'init-local': { start: 100.5, finished: 101 }, 'modules-final': { start: 120, finished: 121.25 } },
  bootId: '0b5c2d7e-1a2b-4c3d-9e8f-001122334455',
  sentAt: 121.5,
};
const line = (v: unknown) => Buffer.from(JSON.stringify(v));
const reason = (bytes: Uint8Array) => {
  const j = judgeReport(bytes, EXPECTED);
  assert.equal(j.ok, false);
  return j.ok ? '' : j.reason;
};

describe('judgeReport: a VM.initialized line from the guest', () => {
  it("takes the reporter's line for the current drive", () => {
    const j = judgeReport(line(GOOD), EXPECTED);
    assert.ok(j.ok);
    assert.equal(j.report.status, 'done');
    assert.equal(cloudInitSeconds(j.report.stages), 20.75);
  });

  it('takes an error report with its errors', () => {
    const j = judgeReport(line({ ...GOOD, status: 'error', errors: ['scripts_user: Runparts: 1 failures'] }), EXPECTED);
    assert.ok(j.ok);
    assert.deepEqual(j.report.errors, ['scripts_user: Runparts: 1 failures']);
  });

  it('refuses garbage, non-objects and invalid UTF-8', () => {
    assert.equal(reason(Buffer.from('hello')), 'not JSON');
    assert.equal(reason(Buffer.from('[1,2]')), 'not a JSON object');
    assert.equal(reason(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'not valid UTF-8');
  });

  it('refuses an oversized line before reading it', () => {
    assert.match(reason(Buffer.alloc(MAX_REPORT_BYTES + 1, 0x20)), /over the 8192-byte limit/);
  });

  it("refuses a wrong nonce or instance-id, and never echoes the nonce", () => {
    const wrong = 'b'.repeat(32);
    const r = reason(line({ ...GOOD, nonce: wrong }));
    assert.equal(r, "nonce is not the current drive's");
    assert.ok(!r.includes(wrong));
    assert.equal(reason(line({ ...GOOD, instanceId: `${EXPECTED.instanceId.slice(0, -1)}2` })), "instance-id is not the current drive's");
  });

  it('refuses extra or missing fields, wrong types, and a status its errors contradict', () => {
    assert.match(reason(line({ ...GOOD, extra: 1 })), /exactly/);
    const { bootId: _b, ...noBoot } = GOOD;
    assert.match(reason(line(noBoot)), /exactly/);
    assert.equal(reason(line({ ...GOOD, status: 'running' })), 'status is neither done nor error');
    assert.equal(reason(line({ ...GOOD, status: 'error' })), 'status and errors disagree');
    assert.equal(reason(line({ ...GOOD, errors: ['x'.repeat(501)], status: 'error' })), 'malformed errors');
    assert.equal(reason(line({ ...GOOD, stages: { 'modules-final': { start: 'now', finished: 1 } } })), 'malformed stage times');
    assert.equal(reason(line({ ...GOOD, stages: { __proto__x: { start: 1, finished: 1 } } })), 'unknown stage');
    assert.equal(reason(line({ ...GOOD, bootId: '../../etc' })), 'malformed boot id');
    assert.equal(reason(line({ ...GOOD, v: 2 })), 'unknown version');
    assert.equal(reason(line({ ...GOOD, sentAt: -1 })), 'malformed send time');
  });
});

describe('ReportLines: lines from the channel, bounded in size and time', () => {
  function reader(maxMs = 5000) {
    let now = 0;
    const lines: string[] = [];
    const drops: string[] = [];
    const r = new ReportLines((l) => lines.push(l.toString()), (d) => drops.push(d), maxMs, () => now);
    return { r, lines, drops, tick: (ms: number) => (now += ms) };
  }

  it('splits lines across chunks and skips empty ones', () => {
    const { r, lines } = reader();
    r.feed(Buffer.from('ab'));
    r.feed(Buffer.from('c\n\nde'));
    r.feed(Buffer.from('f\n'));
    assert.deepEqual(lines, ['abc', 'def']);
  });

  it('drops an oversized line up to its newline, holding no more than the limit, and reads the next', () => {
    const { r, lines, drops } = reader();
    for (let i = 0; i < 10; i++) r.feed(Buffer.alloc(4096, 0x41));
    r.feed(Buffer.from('tail\nnext\n'));
    assert.deepEqual(lines, ['next']);
    assert.equal(drops.length, 1);
    assert.match(drops[0]!, /over the 8192-byte limit/);
  });

  it('drops a line a slow writer leaves unfinished, and the rest of it when it comes', () => {
    const { r, lines, drops, tick } = reader(5000);
    r.feed(Buffer.from('{"v":1'));
    tick(4000);
    assert.equal(r.expire(), false);
    tick(2000);
    assert.equal(r.expire(), true);
    assert.equal(r.expire(), false, 'dropped once');
    r.feed(Buffer.from(',"rest":true}\nlater\n'));
    assert.deepEqual(lines, ['later']);
    assert.deepEqual(drops, ['line unfinished after 5000 ms']);
  });
});

import assert from 'node:assert/strict';
import { inspect, format } from 'node:util';
import { Redacted } from '../src/redacted.js';

describe('Redacted', () => {
  const secret = new Redacted('hunter2');

  it('never prints its value through String, JSON, inspect or format', () => {
    const nested = { user: 'root', password: secret, list: [secret] };
    for (const shown of [String(secret), `${secret}`, JSON.stringify(nested), inspect(nested, { depth: 9 }), format('%s %o %j', secret, nested, nested)]) {
      assert.ok(!shown.includes('hunter2'), `leaked in: ${shown}`);
    }
  });

  it('gives the value back only through reveal()', () => {
    assert.equal(secret.reveal(), 'hunter2');
  });

  it('has no enumerable property that holds the value', () => {
    assert.deepEqual(Object.keys(secret), []);
    assert.deepEqual({ ...secret }, {});
  });
});

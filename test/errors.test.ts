import assert from 'node:assert/strict';
import { AgentError, ERROR_CODES, invalid, toAgentError } from '../src/errors.js';

describe('errors', () => {
  it('gives every code a distinct JSON-RPC number in the reserved range', () => {
    const numbers = Object.values(ERROR_CODES).map((e) => e.rpc);
    assert.equal(new Set(numbers).size, numbers.length);
    for (const n of numbers) assert.ok(n <= -32000 && n >= -32768, String(n));
  });

  it('names the first problem and counts the rest', () => {
    const err = invalid('INVALID_INITIALIZATION', 'initialization is invalid', [
      { path: 'nic_configurations[1].ip.netmask', message: '"255.0.255.0" is not a valid netmask' },
      { path: 'timezone', message: 'is not a known zone' },
      { path: 'host.address', message: 'is empty' },
    ]);
    assert.equal(
      err.message,
      'initialization is invalid: nic_configurations[1].ip.netmask: "255.0.255.0" is not a valid netmask (and 2 more problems)',
    );
    assert.equal(err.problems.length, 3);
    assert.equal(err.code, 'INVALID_INITIALIZATION');
    assert.equal(err.expected, true);
  });

  it('wraps unknown throwables as INTERNAL, keeping the cause', () => {
    const cause = new TypeError('boom');
    const err = toAgentError(cause);
    assert.equal(err.code, 'INTERNAL');
    assert.equal(err.cause, cause);
    assert.equal(err.expected, false);
    const same = new AgentError('DOMAIN_NOT_FOUND', 'no domain "x"');
    assert.equal(toAgentError(same), same);
  });
});

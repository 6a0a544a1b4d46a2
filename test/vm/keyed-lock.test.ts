import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedLock } from '../../src/vm/keyed-lock.js';

describe('vm KeyedLock', () => {
  it('runs tasks for one key one at a time, in order', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
    };
    await Promise.all([lock.run('a', task('1', 20)), lock.run('a', task('2', 1)), lock.run('a', task('3', 1))]);
    assert.deepEqual(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('runs different keys in parallel', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    await Promise.all([
      lock.run('a', async () => { log.push('a start'); await sleep(20); log.push('a end'); }),
      lock.run('b', async () => { log.push('b start'); await sleep(1); log.push('b end'); }),
    ]);
    assert.deepEqual(log, ['a start', 'b start', 'b end', 'a end']);
  });

  it('keeps serving a key after a task failed, and forgets idle keys', async () => {
    const lock = new KeyedLock();
    await assert.rejects(lock.run('a', () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await lock.run('a', () => Promise.resolve(42)), 42);
    await sleep(0);
    assert.equal(lock.busy, 0);
  });
});

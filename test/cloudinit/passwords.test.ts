import assert from 'node:assert/strict';
import { buildDriveTree, firstIdentity, passwordHashCache, prehashPasswords } from '../../src/cloudinit/index.js';
import { Redacted } from '../../src/redacted.js';
import { clearPassword, DOMAIN_UUID, facts, initialization, user } from '../helpers/initialization.js';

describe('cloudinit password pre-hashing', () => {
  const init = initialization({ users: [user('root', { password: clearPassword('s3cret') }), user('alice', { password: clearPassword('s3cret') })] });

  it('gives the drive the same bytes as hashing inside the translator', async () => {
    const hashed = await prehashPasswords(init, firstIdentity(init, facts()).instanceId, { cache: false });
    assert.ok(hashed.users.every((u) => u.password?.kind === 'hashed' && u.password.value instanceof Redacted));
    assert.deepEqual([...buildDriveTree(hashed, facts()).tree], [...buildDriveTree(init, facts()).tree]);
  });

  it('reuses a cached hash for the same instance, user and password, and only then', async () => {
    passwordHashCache.clear();
    const first = await prehashPasswords(init, DOMAIN_UUID);
    const again = await prehashPasswords(init, DOMAIN_UUID);
    assert.equal(again.users[0]?.password?.value.reveal(), first.users[0]?.password?.value.reveal());
    const other = await prehashPasswords(init, 'another-instance');
    assert.notEqual(other.users[0]?.password?.value.reveal(), first.users[0]?.password?.value.reveal());
    assert.notEqual(first.users[0]?.password?.value.reveal(), first.users[1]?.password?.value.reveal(), 'salt differs per user');
  });

  it('leaves settings without clear passwords untouched', async () => {
    const none = initialization({ users: [user('bob')] });
    assert.equal(await prehashPasswords(none, DOMAIN_UUID), none);
  });
});

import assert from 'node:assert/strict';
import { sha512Crypt, sha512CryptAsync } from '../../src/crypt/libcrypt.js';
import { AgentError } from '../../src/errors.js';
import { run } from '../helpers/tools.js';

describe('libcrypt SHA-512 crypt', () => {
  it('matches openssl passwd -6 for the same password and salt', async () => {
    for (const [password, salt] of [
      ['myPass', 'abcdefghijklmnop'],
      ['pässwörd with spaces', 'x./Z9'],
      ['a much longer passphrase, 64 characters and more, to cross blocks', 'saltsalt'],
    ] as const) {
      const expected = (await run('/usr/bin/openssl', ['passwd', '-6', '-salt', salt, password])).trim();
      assert.equal(sha512Crypt(password, salt), expected);
      assert.equal(await sha512CryptAsync(password, salt), expected);
    }
  });

  it('runs many async hashes concurrently with correct, independent results', async () => {
    const inputs = Array.from({ length: 16 }, (_, i) => [`password-${i}`, `salt${i}`] as const);
    const results = await Promise.all(inputs.map(([p, s]) => sha512CryptAsync(p, s)));
    results.forEach((hash, i) => {
      const [p, s] = inputs[i]!;
      assert.equal(hash, sha512Crypt(p, s));
    });
  });

  it('rejects a salt outside the crypt alphabet instead of hashing with a surprise', () => {
    for (const bad of ['', 'has$dollar', 'x'.repeat(17), 'new\nline']) {
      assert.throws(() => sha512Crypt('p', bad), AgentError);
    }
  });
});

/**
 * The one place where a clear-text password is revealed: it is hashed here, with
 * SHA-512 crypt, and only the hash travels on. Already-hashed passwords pass through.
 */
import { createHash } from 'node:crypto';
import { CRYPT_ALPHABET, sha512Crypt, sha512CryptAsync } from '../crypt/libcrypt.js';
import type { Problem } from '../errors.js';
import type { Initialization, Password, User } from '../initialization/types.js';
import { Redacted } from '../redacted.js';

const SALT_LENGTH = 16;

/**
 * A crypt(3) hash chpasswd -e and useradd -p accept: `$id$...` without the characters
 * that would break chpasswd's `name:hash` lines.
 */
const CRYPT_HASH = /^\$[0-9a-z]+\$[!-9;-~]+$/;

/**
 * The salt is derived, not random, so the same request yields the same drive bytes
 * (repeated attach requests are then idempotent). It comes from the instance-id and the
 * user name only, NOT from the password: anything computed from the password with a fast
 * hash and published next to the slow crypt hash would let an attacker test guesses at
 * sha256 speed and skip the crypt's cost. Derived this way the salt is public knowledge
 * that says nothing about the password, differs per user and per instance (so equal
 * passwords still give different hashes across VMs and users), and precomputed tables
 * would have to be built for one VM's one user at a time.
 */
export function deriveSalt(instanceId: string, userName: string): string {
  const digest = createHash('sha256').update(`configdrive-agent salt v1\0${instanceId}\0${userName}`, 'utf8').digest();
  let salt = '';
  // 256 is a multiple of 64, so taking each byte modulo 64 has no bias.
  for (let i = 0; i < SALT_LENGTH; i++) salt += CRYPT_ALPHABET[digest[i]! % 64]!;
  return salt;
}

export type HashResult = { readonly hash: string } | { readonly problem: Problem };

/** The crypt(3) hash to put on the drive for a user's password. */
export function passwordHash(password: Password, instanceId: string, userName: string, path: string): HashResult {
  if (password.kind === 'hashed') {
    const hash = password.value.reveal();
    if (!CRYPT_HASH.test(hash)) {
      return { problem: { path, message: 'is not a crypt(3) hash ($id$salt$hash, no spaces or colons)' } };
    }
    return { hash };
  }
  return { hash: sha512Crypt(password.value.reveal(), deriveSalt(instanceId, userName)) };
}

/**
 * The same hashes passwordHash would compute, computed on libuv's thread pool so a
 * daemon building many drives keeps its event loop free (one hash costs about 1 ms of
 * CPU). The translator then only sees hashed passwords and stays synchronous and pure.
 */
export async function prehashPasswords(init: Initialization, instanceId: string): Promise<Initialization> {
  if (!init.users.some((u) => u.password?.kind === 'clear')) return init;
  const users = await Promise.all(
    init.users.map(async (user): Promise<User> => {
      if (user.password?.kind !== 'clear') return user;
      const hash = await sha512CryptAsync(user.password.value.reveal(), deriveSalt(instanceId, user.name));
      return { ...user, password: { kind: 'hashed', value: new Redacted(hash) } };
    }),
  );
  return { ...init, users };
}

/**
 * The one place where a clear-text password is revealed: it is hashed here, with
 * SHA-512 crypt, and only the hash travels on. Already-hashed passwords pass through.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
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
 * Recently computed hashes, so an engine retrying the same VM start does not pay the
 * crypt again. Keys are HMACs under a key that lives only in this process's memory:
 * they reveal nothing about the password without that key, and nothing is persisted.
 */
class HashCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, string>();
  constructor(private readonly capacity: number) {}

  keyFor(instanceId: string, user: string, password: string): string {
    return createHmac('sha256', this.key).update(`${instanceId}\0${user}\0${password}`, 'utf8').digest('base64');
  }

  get(key: string): string | undefined {
    const hash = this.entries.get(key);
    if (hash !== undefined) {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hash);
    }
    return hash;
  }

  set(key: string, hash: string): void {
    this.entries.set(key, hash);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(): void {
    this.entries.clear();
  }
}

export const passwordHashCache = new HashCache(1024);

/**
 * The same hashes passwordHash would compute, done before translation so the translator
 * only sees hashed passwords and stays synchronous and pure. One hash costs about 1 ms of
 * CPU: on the daemon's event loop it runs on libuv's thread pool; a build thread, whose
 * whole job is this build, passes `blocking` and hashes on its own thread, which also
 * saves handing koffi's 32 KiB work buffer to another thread and back.
 */
export async function prehashPasswords(init: Initialization, instanceId: string, options: { cache?: boolean; blocking?: boolean } = {}): Promise<Initialization> {
  if (!init.users.some((u) => u.password?.kind === 'clear')) return init;
  const useCache = options.cache ?? true;
  const users = await Promise.all(
    init.users.map(async (user): Promise<User> => {
      if (user.password?.kind !== 'clear') return user;
      const clear = user.password.value.reveal();
      const key = useCache ? passwordHashCache.keyFor(instanceId, user.name, clear) : '';
      let hash = useCache ? passwordHashCache.get(key) : undefined;
      if (hash === undefined) {
        const salt = deriveSalt(instanceId, user.name);
        hash = options.blocking === true ? sha512Crypt(clear, salt) : await sha512CryptAsync(clear, salt);
        if (useCache) passwordHashCache.set(key, hash);
      }
      return { ...user, password: { kind: 'hashed', value: new Redacted(hash) } };
    }),
  );
  return { ...init, users };
}

/**
 * SHA-512 crypt ($6$) through the system's libcrypt (libxcrypt), by FFI.
 *
 * Why not a JS implementation: the same hash costs about 15 ms in pure JS (unixcrypt)
 * and about 1.1 ms in libxcrypt on our 2-core hosts, and the daemon hashes every clear
 * password it receives. libcrypt.so.1 is part of every Debian system (package libcrypt1,
 * priority required), so this adds no dependency.
 *
 * This is the only module besides src/libvirt that imports koffi: one module per C library.
 */
import koffi from 'koffi';
import { AgentError } from '../errors.js';

/** libxcrypt's `struct crypt_data` is 32768 bytes; crypt_rn() is told the size we pass. */
const CRYPT_DATA_SIZE = 32768;

/** The 64 characters crypt(3) salts and hashes are written in. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const SALT = /^[./0-9A-Za-z]{1,16}$/;

interface CryptRn {
  (phrase: string, setting: string, data: Buffer, size: number): string | null;
  async(phrase: string, setting: string, data: Buffer, size: number, cb: (err: unknown, res: string | null) => void): void;
}

let cryptRn: CryptRn | undefined;

function bind(): CryptRn {
  if (cryptRn !== undefined) return cryptRn;
  let lib: koffi.IKoffiLib;
  try {
    lib = koffi.load('libcrypt.so.1');
  } catch (err) {
    throw new AgentError('INTERNAL', 'Cannot load libcrypt.so.1 (Debian package libcrypt1)', { cause: err });
  }
  // SAFETY: crypt_rn writes its result into `data`, which we own for the whole call, and
  // returns a pointer into it (or NULL); koffi copies that C string into a JS string, so
  // nothing is allocated on the C side and nothing needs freeing. crypt_rn is reentrant:
  // each call gets its own buffer, so concurrent async calls on koffi's worker threads
  // never share state.
  cryptRn = lib.func('const char *crypt_rn(const char *phrase, const char *setting, _Inout_ uint8_t *data, int size)') as unknown as CryptRn;
  return cryptRn;
}

function setting(salt: string): string {
  if (!SALT.test(salt)) {
    throw new AgentError('INTERNAL', 'SHA-512 crypt salt must be 1-16 characters of [./0-9A-Za-z]');
  }
  return `$6$${salt}$`;
}

function checked(result: string | null): string {
  // libxcrypt returns NULL or a string starting with '*' on failure.
  if (result === null || !result.startsWith('$6$')) {
    throw new AgentError('INTERNAL', 'libcrypt could not compute a SHA-512 crypt hash');
  }
  return result;
}

/** `$6$<salt>$<hash>` for the password, computed on the calling thread (about 1 ms). */
export function sha512Crypt(password: string, salt: string): string {
  const fn = bind();
  return checked(fn(password, setting(salt), Buffer.alloc(CRYPT_DATA_SIZE), CRYPT_DATA_SIZE));
}

/** The same, on one of koffi's worker threads, so the event loop keeps serving. */
export function sha512CryptAsync(password: string, salt: string): Promise<string> {
  const fn = bind();
  const prefix = setting(salt);
  const data = Buffer.alloc(CRYPT_DATA_SIZE);
  return new Promise((resolve, reject) => {
    fn.async(password, prefix, data, CRYPT_DATA_SIZE, (err, result) => {
      if (err !== null && err !== undefined) {
        reject(new AgentError('INTERNAL', 'libcrypt call failed', { cause: err }));
        return;
      }
      try {
        resolve(checked(result));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * Value checks shared by every input format. Each returns the normalized value or a
 * message saying what is wrong with it ("is not a valid netmask"); the caller adds the
 * field path. Messages quote the bad value, except for secrets, which are never quoted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { parseAuthorizedKey } from '../authorized-keys.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(message: string): Checked<T> => ({ ok: false, message });

/** Shown in messages: quoted, shortened, control characters escaped by JSON. */
export function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A value that ends up on one line of a generated file (host name, user name, zone...):
 * a newline in it could start a new YAML key or shell line, so it is refused here, at
 * the edge, whatever the translator does later.
 */
export function singleLine(value: string): Checked<string> {
  if (CONTROL.test(value)) return bad(`${show(value)} contains a newline or another control character`);
  if (value.trim() !== value) return bad(`${show(value)} has leading or trailing spaces`);
  if (value === '') return bad('is empty');
  return ok(value);
}

const LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** RFC 1123 host name or FQDN: labels of 1-63 letters, digits and inner hyphens, 253 in all. */
export function hostName(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return line;
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length > 253 || !name.split('.').every((l) => LABEL.test(l))) {
    return bad(`${show(value)} is not a valid host name (RFC 1123: labels of letters, digits and inner hyphens, at most 63 each)`);
  }
  return ok(name);
}

let zones: Set<string> | undefined;

/** An IANA zone as the guest's tzdata knows it; Intl's list plus the zones it spells differently. */
export function timezone(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return line;
  zones ??= new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Universal', 'Zulu']);
  if (zones.has(value)) return ok(value);
  try {
    // Aliases (e.g. Asia/Calcutta) are valid zones Intl accepts without listing them.
    new Intl.DateTimeFormat('en', { timeZone: value });
    if (/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(value)) return ok(value);
  } catch {
    // fall through
  }
  return bad(`${show(value)} is not a known time zone (IANA names such as Europe/Paris or UTC)`);
}

/** POSIX portable user names, as useradd on Debian accepts them by default. */
export function userName(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return line;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) return bad(`${show(value)} is not a valid user name (lower-case letters, digits, _ and -, at most 32, not starting with a digit or -)`);
  return ok(value);
}

export function groupName(value: string): Checked<string> {
  const u = userName(value);
  return u.ok ? u : bad(`${show(value)} is not a valid group name`);
}

/**
 * An authorized_keys line in sshd's syntax (options, a known key type, a key, a comment),
 * by the one parser the translator uses too. The key is not base64-decoded: the seed's
 * own example abbreviates it ("AAAAB3Nza[…]").
 */
export function sshKey(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return bad(`an SSH key ${line.message}`);
  const parsed = parseAuthorizedKey(value);
  return parsed.ok ? ok(value) : bad(parsed.message);
}

export function ipv4(value: string): Checked<string> {
  return isIPv4(value) ? ok(value) : bad(`${show(value)} is not a valid IPv4 address`);
}

export function ipv6(value: string): Checked<string> {
  return isIPv6(value) ? ok(value) : bad(`${show(value)} is not a valid IPv6 address`);
}

export function ipAddress(value: string): Checked<string> {
  return isIPv4(value) || isIPv6(value) ? ok(value) : bad(`${show(value)} is not a valid IP address`);
}

/** A dotted-quad netmask (contiguous ones) or a prefix length, as a prefix length. */
export function ipv4Prefix(value: string): Checked<number> {
  if (/^\d{1,2}$/.test(value)) {
    const n = Number(value);
    return n <= 32 ? ok(n) : bad(`${show(value)} is not a valid IPv4 prefix length (0-32)`);
  }
  if (isIPv4(value)) {
    const bits = value.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
    const hostBits = 0xffff_ffff - bits;
    // Contiguous ones then zeros: the host part is 2^k - 1.
    if ((hostBits & (hostBits + 1)) === 0) return ok(32 - Math.round(Math.log2(hostBits + 1)));
  }
  return bad(`${show(value)} is not a valid netmask`);
}

export function ipv6Prefix(value: string): Checked<number> {
  const digits = value.startsWith('/') ? value.slice(1) : value;
  if (/^\d{1,3}$/.test(digits) && Number(digits) <= 128) return ok(Number(digits));
  return bad(`${show(value)} is not a valid IPv6 prefix length (0-128)`);
}

/** Six hex octets, colon or dash separated; normalized to lower-case colon form. */
export function mac(value: string): Checked<string> {
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(value)) return bad(`${show(value)} is not a MAC address (six hex octets such as 52:54:00:12:34:56)`);
  const normalized = value.toLowerCase().replace(/-/g, ':');
  // The least significant bit of the first octet marks a group address, never a NIC.
  if ((parseInt(normalized.slice(0, 2), 16) & 1) === 1) return bad(`${show(value)} is a multicast address, not a NIC's`);
  return ok(normalized);
}

/** Linux interface names: 1-15 bytes, no '/', ':' or whitespace. */
export function nicName(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return line;
  if (value.length > 15 || /[/:\s]/.test(value) || value === '.' || value === '..') return bad(`${show(value)} is not a valid interface name (1-15 characters without '/', ':' or spaces)`);
  return ok(value);
}

/** An absolute guest path without NUL, `..` or empty segments. */
export function guestPath(value: string): Checked<string> {
  if (CONTROL.test(value)) return bad(`${show(value)} contains a control character`);
  if (!value.startsWith('/') || value === '/') return bad(`${show(value)} is not an absolute file path`);
  if (value.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) return bad(`${show(value)} has an empty, "." or ".." segment`);
  if (value.length > 4096) return bad('is longer than 4096 characters');
  return ok(value);
}

/** Strict base64 (RFC 4648 alphabet, padding, whitespace between lines allowed). */
export function base64(value: string): Checked<Uint8Array> {
  const compact = value.replace(/[\r\n\t ]/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) return bad('is not valid base64');
  return ok(new Uint8Array(Buffer.from(compact, 'base64')));
}

/** A locale name such as en_US.UTF-8 or C.UTF-8. */
export function locale(value: string): Checked<string> {
  const line = singleLine(value);
  if (!line.ok) return line;
  if (!/^[A-Za-z]{1,8}(?:_[A-Za-z0-9]{2,3})?(?:\.[A-Za-z0-9-]{1,20})?(?:@[A-Za-z0-9]{1,20})?$/.test(value)) return bad(`${show(value)} is not a locale name (such as en_US.UTF-8)`);
  return ok(value);
}

/**
 * System Use Sharing Protocol entries (SUSP 1.12) carrying Rock Ridge (RRIP 1.12 in its
 * 1991A form, the one every reader knows): SP and ER mark the extension in the root, PX
 * gives POSIX modes, TF timestamps, NM the real name. An entry is 2 signature bytes, a
 * length, a version, then data; multi-byte numbers are "both-endian" (LE then BE).
 */

export const SUSP_CE_LENGTH = 28;

/** One entry's bytes. */
export type Entry = Uint8Array;

function entry(signature: string, length: number): Buffer {
  const b = Buffer.alloc(length);
  b[0] = signature.charCodeAt(0);
  b[1] = signature.charCodeAt(1);
  b[2] = length;
  b[3] = 1;
  return b;
}

export function both32(b: Buffer, offset: number, value: number): void {
  b.writeUInt32LE(value, offset);
  b.writeUInt32BE(value, offset + 4);
}

export function both16(b: Buffer, offset: number, value: number): void {
  b.writeUInt16LE(value, offset);
  b.writeUInt16BE(value, offset + 2);
}

/** SP: "SUSP is used on this volume", first entry of the root's "." record; 0 bytes skipped. */
export function sp(): Entry {
  const b = entry('SP', 7);
  b[4] = 0xbe;
  b[5] = 0xef;
  return b;
}

/** RR (RRIP 1.09 compatibility): which RRIP fields follow; some older readers look for it. */
export function rr(withName: boolean): Entry {
  const b = entry('RR', 5);
  b[4] = 0x01 | 0x80 | (withName ? 0x08 : 0); // PX, TF, NM
  return b;
}

/** PX (1991A form, 36 bytes): mode, link count, uid, gid. */
export function px(mode: number, links: number): Entry {
  const b = entry('PX', 36);
  both32(b, 4, mode);
  both32(b, 12, links);
  both32(b, 20, 0);
  both32(b, 28, 0);
  return b;
}

/** The 7-byte date of ECMA-119 9.1.5, in UTC. */
export function shortDate(b: Buffer, offset: number, date: Date): void {
  b[offset] = date.getUTCFullYear() - 1900;
  b[offset + 1] = date.getUTCMonth() + 1;
  b[offset + 2] = date.getUTCDate();
  b[offset + 3] = date.getUTCHours();
  b[offset + 4] = date.getUTCMinutes();
  b[offset + 5] = date.getUTCSeconds();
  b[offset + 6] = 0;
}

/** TF with modification, access and attribute-change times, all `date`. */
export function tf(date: Date): Entry {
  const b = entry('TF', 5 + 3 * 7);
  b[4] = 0x02 | 0x04 | 0x08;
  for (let i = 0; i < 3; i++) shortDate(b, 5 + i * 7, date);
  return b;
}

/** NM entries for a name, split at 250 bytes with the CONTINUE flag on all but the last. */
export function nm(name: Uint8Array): Entry[] {
  const out: Entry[] = [];
  for (let start = 0; start < name.length || start === 0; start += 250) {
    const chunk = name.subarray(start, start + 250);
    const b = entry('NM', 5 + chunk.length);
    b[4] = start + 250 < name.length ? 0x01 : 0;
    b.set(chunk, 5);
    out.push(b);
    if (name.length === 0) break;
  }
  return out;
}

/** CE: the rest of this record's entries are at `block`:`offset`, `length` bytes. */
export function ce(block: number, offset: number, length: number): Entry {
  const b = entry('CE', SUSP_CE_LENGTH);
  both32(b, 4, block);
  both32(b, 12, offset);
  both32(b, 20, length);
  return b;
}

const ER_ID = 'RRIP_1991A';
const ER_DESCRIPTOR = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const ER_SOURCE = 'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';

/** ER: names the extension in use (the standard RRIP_1991A identification strings). */
export function er(): Entry {
  const length = 8 + ER_ID.length + ER_DESCRIPTOR.length + ER_SOURCE.length;
  const b = entry('ER', length);
  b[4] = ER_ID.length;
  b[5] = ER_DESCRIPTOR.length;
  b[6] = ER_SOURCE.length;
  b[7] = 1;
  b.write(ER_ID + ER_DESCRIPTOR + ER_SOURCE, 8, 'latin1');
  return b;
}

export function totalLength(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += e.length;
  return n;
}

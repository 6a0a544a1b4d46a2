/**
 * Where a JSON text breaks the grammar, and how, in words that never quote it. V8's own
 * JSON.parse messages quote the text around the error (`"...assword": myPass}]}" is not
 * valid JSON`), which would carry a secret into a reply or the log; this scanner is only
 * run after JSON.parse has failed, and keeps its own stack, so no nesting overflows it.
 */

export interface JsonSyntaxError {
  /** Offset in UTF-8 bytes of the first byte that cannot continue a JSON text. */
  readonly byte: number;
  readonly reason: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const LITERALS = new Map(['true', 'false', 'null'].map((w) => [w.charCodeAt(0), w]));
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** The first syntax error in `text`, or undefined when it is a complete JSON text. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const at = (index: number, reason: string): JsonSyntaxError => ({ byte: Buffer.byteLength(text.slice(0, index), 'utf8'), reason });
  const n = text.length;
  const closers: number[] = [];
  let i = 0;
  let want: 'value' | 'key' | 'next' = 'value';
  const skipSpace = () => {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
  };
  /** Consumes a string starting at its quote; an error, or undefined. */
  const string = (): JsonSyntaxError | undefined => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return undefined;
      }
      if (c < 0x20) return at(i, 'control character in a string');
      if (c !== BACKSLASH) continue;
      const e = text.charCodeAt(++i);
      if (e === 0x75) {
        for (let k = 1; k <= 4; k++) if (!isHex(text.charCodeAt(i + k))) return i + k >= n ? at(n, 'unterminated string') : at(i + k, 'invalid \\u escape in a string');
        i += 4;
      } else if (!ESCAPES.has(e)) return i >= n ? at(n, 'unterminated string') : at(i, 'invalid escape in a string');
    }
    return at(n, 'unterminated string');
  };
  const digits = (): boolean => {
    const from = i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    return i > from;
  };
  const number = (): JsonSyntaxError | undefined => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (text.charCodeAt(i) === 0x30) i++;
    else if (!digits()) return i >= n ? at(n, 'unexpected end of input') : at(i, 'invalid number');
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      if (!digits()) return i >= n ? at(n, 'unexpected end of input') : at(i, 'invalid number');
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!digits()) return i >= n ? at(n, 'unexpected end of input') : at(i, 'invalid number');
    }
    return undefined;
  };
  for (;;) {
    skipSpace();
    if (want === 'next' && closers.length === 0) return i < n ? at(i, 'unexpected data after the value') : undefined;
    if (i >= n) return at(n, 'unexpected end of input');
    const c = text.charCodeAt(i);
    if (want === 'key') {
      if (c !== QUOTE) return at(i, 'expected a property name in double quotes');
      const bad = string();
      if (bad !== undefined) return bad;
      skipSpace();
      if (i >= n) return at(n, 'unexpected end of input');
      if (text.charCodeAt(i) !== 0x3a) return at(i, "expected ':' after a property name");
      i++;
      want = 'value';
      continue;
    }
    if (want === 'next') {
      const closer = closers[closers.length - 1]!;
      if (c === closer) {
        closers.pop();
        i++;
      } else if (c === 0x2c) {
        i++;
        want = closer === 0x7d ? 'key' : 'value';
      } else return at(i, closer === 0x7d ? "expected ',' or '}'" : "expected ',' or ']'");
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      i++;
      skipSpace();
      const closer = c === 0x7b ? 0x7d : 0x5d;
      if (text.charCodeAt(i) === closer) {
        i++;
        want = 'next';
      } else {
        closers.push(closer);
        want = c === 0x7b ? 'key' : 'value';
      }
      continue;
    }
    want = 'next';
    if (c === QUOTE) {
      const bad = string();
      if (bad !== undefined) return bad;
    } else if (c === 0x2d || isDigit(c)) {
      const bad = number();
      if (bad !== undefined) return bad;
    } else {
      const word = LITERALS.get(c);
      if (word === undefined) return at(i, 'unexpected character');
      for (let k = 0; k < word.length; k++, i++) {
        if (i >= n) return at(n, 'unexpected end of input');
        if (text.charCodeAt(i) !== word.charCodeAt(k)) return at(i, 'unexpected character');
      }
    }
  }
}

/** ` at byte N: reason` for a text JSON.parse refused, to follow "is not valid JSON"; never a byte of the text. */
export function jsonErrorText(text: string): string {
  const found = jsonSyntaxError(text);
  return found === undefined ? '' : ` at byte ${String(found.byte)}: ${found.reason}`;
}

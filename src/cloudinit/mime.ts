/**
 * A MIME message given as user data, split into its leaf parts the way Python's email
 * parser (which cloud-init uses) splits it, but strictly: where Python records a defect
 * and carries on (no boundary, no closing delimiter, a header line that is not a
 * header), cloud-init silently skips or misreads the data, so here it is an error. Each
 * leaf keeps its raw text, so it can go on the drive byte for byte.
 */

export interface MimeLeaf {
  /** 1-based, in document order, counting leaves only. */
  readonly index: number;
  /** The part as given: headers, blank line, body. */
  readonly raw: string;
  /** Header names lower-cased; values unfolded. */
  readonly headers: ReadonlyMap<string, string>;
  /** `type/subtype`, lower-cased; text/plain when absent, as Python's email has it. */
  readonly contentType: string;
  /** The body with its transfer encoding undone. */
  readonly payload: Uint8Array;
}

export type MimeResult = { readonly ok: true; readonly leaves: readonly MimeLeaf[] } | { readonly ok: false; readonly message: string };

export const MIME_LIMITS = { maxDepth: 8, maxParts: 64 } as const;

class MimeError extends Error {}

/** `part 2: ` for a nested part, nothing for the message itself. */
function at(where: string): string {
  return where === '' ? '' : `${where}: `;
}

interface Entity {
  readonly headers: Map<string, string>;
  readonly body: string;
}

const LINE = /[^\r\n]*(?:\r\n|\r|\n|$)/g;

function lines(text: string): string[] {
  const out = text.match(LINE) ?? [];
  // The pattern matches the empty string at the very end once more.
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

function stripEol(line: string): string {
  return line.replace(/(?:\r\n|\r|\n)$/, '');
}

const MEANINGFUL: ReadonlySet<string> = new Set(['content-type', 'content-transfer-encoding', 'merge-type', 'x-merge-type']);

/** A repeated header's continuation lines belong to the copy that is not read. */
const SKIPPED = '';

const HEADER = /^([!-9;-~]+):[ \t]*(.*)$/;

function parseEntity(text: string, where: string): Entity {
  const headers = new Map<string, string>();
  const all = lines(text);
  let i = 0;
  let last: string | undefined;
  for (; i < all.length; i++) {
    const line = stripEol(all[i] ?? '');
    if (line === '') {
      i++;
      break;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      if (last !== SKIPPED) headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`.trim());
      continue;
    }
    const m = HEADER.exec(line);
    if (m === null) throw new MimeError(`${at(where)}header line ${String(i + 1)} is not "Name: value" (a blank line must end the headers)`);
    const name = (m[1] ?? '').toLowerCase();
    last = name;
    if (headers.has(name)) {
      // Python's email reads the first; for these a second would be read differently by people and by tools.
      if (MEANINGFUL.has(name)) throw new MimeError(`${at(where)}header ${m[1] ?? ''} is given twice`);
      last = SKIPPED;
      continue;
    }
    headers.set(name, (m[2] ?? '').trim());
  }
  return { headers, body: all.slice(i).join('') };
}

interface ContentType {
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

function parseContentType(value: string | undefined, where: string): ContentType {
  if (value === undefined) return { type: 'text/plain', params: new Map() };
  const m = /^([!#-'*+.0-9A-Z^-~-]+\/[!#-'*+.0-9A-Z^-~-]+)\s*(.*)$/i.exec(value);
  if (m === null) throw new MimeError(`${at(where)}Content-Type ${JSON.stringify(value)} is not type/subtype`);
  const params = new Map<string, string>();
  let rest = m[2] ?? '';
  while (rest !== '') {
    const p = /^;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]*))\s*/.exec(rest);
    if (p === null) {
      if (/^;\s*$/.test(rest)) break;
      throw new MimeError(`${at(where)}Content-Type parameters ${JSON.stringify(rest)} are not ; name=value`);
    }
    params.set((p[1] ?? '').toLowerCase(), p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? ''));
    rest = rest.slice(p[0].length);
  }
  return { type: (m[1] ?? '').toLowerCase(), params };
}

function decodeQuotedPrintable(body: string): Uint8Array {
  const soft = body.replace(/=(?:\r\n|\r|\n)/g, '');
  const bytes: number[] = [];
  const raw = Buffer.from(soft, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] ?? 0;
    const hex = raw.subarray(i + 1, i + 3).toString('latin1');
    if (b === 0x3d && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(b);
    }
  }
  return Uint8Array.from(bytes);
}

function decodeBody(entity: Entity, where: string): Uint8Array {
  const cte = (entity.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  switch (cte) {
    case 'base64': {
      const compact = entity.body.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new MimeError(`${at(where)}its base64 body is not base64`);
      return Buffer.from(compact, 'base64');
    }
    case 'quoted-printable':
      return decodeQuotedPrintable(entity.body);
    case '7bit':
    case '8bit':
    case 'binary':
      return Buffer.from(entity.body, 'utf8');
    default:
      throw new MimeError(`${at(where)}Content-Transfer-Encoding ${JSON.stringify(cte)} is not one cloud-init decodes (base64, quoted-printable, 7bit, 8bit)`);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The raw texts between the delimiters of a multipart body; the line end before a delimiter is the delimiter's. */
function splitMultipart(body: string, boundary: string, where: string): string[] {
  const delimiter = new RegExp(`^--${escapeRe(boundary)}(--)?[ \\t]*$`);
  const parts: string[] = [];
  let current: string[] | undefined;
  let closed = false;
  for (const line of lines(body)) {
    const m = delimiter.exec(stripEol(line));
    if (m === null) {
      current?.push(line);
      continue;
    }
    if (current !== undefined) parts.push(current.join('').replace(/(?:\r\n|\r|\n)$/, ''));
    if (m[1] === '--') {
      closed = true;
      break;
    }
    current = [];
  }
  if (current === undefined) throw new MimeError(`${at(where)}no line --${boundary} starts a part`);
  if (!closed) throw new MimeError(`${at(where)}the closing line --${boundary}-- is missing (is the data cut short?)`);
  return parts;
}

function walk(text: string, where: string, depth: number, leaves: MimeLeaf[]): void {
  if (depth > MIME_LIMITS.maxDepth) throw new MimeError(`${at(where)}multiparts nest deeper than ${String(MIME_LIMITS.maxDepth)}`);
  const entity = parseEntity(text, where);
  const contentType = parseContentType(entity.headers.get('content-type'), where);
  if (contentType.type.startsWith('multipart/')) {
    const boundary = contentType.params.get('boundary');
    if (boundary === undefined || boundary === '') throw new MimeError(`${at(where)}${contentType.type} has no boundary parameter`);
    splitMultipart(entity.body, boundary, where).forEach((part, i) => {
      walk(part, `${where === '' ? '' : `${where} `}part ${String(i + 1)}`, depth + 1, leaves);
    });
    return;
  }
  if (contentType.type.startsWith('message/')) throw new MimeError(`${at(where)}${contentType.type} parts are not accepted; give the parts themselves`);
  if (leaves.length >= MIME_LIMITS.maxParts) throw new MimeError(`more than ${String(MIME_LIMITS.maxParts)} MIME parts`);
  leaves.push({ index: leaves.length + 1, raw: text, headers: entity.headers, contentType: contentType.type, payload: decodeBody(entity, where) });
}

export function parseMime(text: string): MimeResult {
  const leaves: MimeLeaf[] = [];
  try {
    walk(text, '', 0, leaves);
  } catch (err) {
    if (err instanceof MimeError) return { ok: false, message: err.message };
    throw err;
  }
  if (leaves.length === 0) return { ok: false, message: 'the MIME message has no parts' };
  return { ok: true, leaves };
}

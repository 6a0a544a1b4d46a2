/**
 * Newline-delimited frames over a byte stream, bounded: a line longer than the limit is
 * reported once and the rest of it skipped without being buffered, so a client sending
 * an endless line costs the daemon a constant amount of memory. A line must be UTF-8:
 * decoding with replacement characters would hand the daemon a document (a password)
 * other than the one the client sent.
 */
import { isUtf8 } from 'node:buffer';

export type Id = string | number | null;

export type FrameEvent =
  | { readonly kind: 'frame'; readonly text: string }
  | { readonly kind: 'invalid-utf8'; readonly id: Id }
  | { readonly kind: 'oversized'; readonly bytes: number; readonly id: Id };

/** How much of a line `leadingId` looks at: enough for `{"jsonrpc": "2.0", "id": ` and an id. */
export const ID_PREFIX_BYTES = 256;

const LEADING_ID = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?(?:0|[1-9]\d{0,15})(?:\.\d{1,16})?(?:[eE][+-]?\d{1,3})?|"[^"\\]{0,128}")\s*[,}]/;

/**
 * The id of a line that cannot be read as a request (over the size limit, not UTF-8,
 * not JSON), when it is cheap to know: the line opens with `{"id": ID` or
 * `{"jsonrpc": "2.0", "id": ID` within its first ID_PREFIX_BYTES bytes, the id a number
 * or a string without escapes. Anything else gives null, as JSON-RPC says.
 */
export function leadingId(prefix: string): Id {
  const token = LEADING_ID.exec(prefix.slice(0, ID_PREFIX_BYTES))?.[1];
  if (token === undefined) return null;
  try {
    const id = JSON.parse(token) as string | number;
    return typeof id === 'number' && !Number.isFinite(id) ? null : id;
  } catch {
    // A control character in the string: not a JSON string, so no id.
    return null;
  }
}

export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;
  /** Chunks fed and not yet framed, and where framing stopped in the first. */
  private chunks: Buffer[] = [];
  private offset = 0;

  constructor(private readonly maxBytes: number) {}

  /** Feeds a chunk; returns every complete frame and oversize event it finished. */
  push(chunk: Buffer): FrameEvent[] {
    this.feed(chunk);
    const events: FrameEvent[] = [];
    for (let e = this.next(); e !== undefined; e = this.next()) events.push(e);
    return events;
  }

  /** Queues a chunk to be framed by `next`, one frame at a time. */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.chunks.push(chunk);
  }

  /** The next frame or oversize event from what was fed, or undefined until more arrives. */
  next(): FrameEvent | undefined {
    for (let chunk = this.chunks[0]; chunk !== undefined; chunk = this.chunks[0]) {
      const nl = chunk.indexOf(0x0a, this.offset);
      const piece = chunk.subarray(this.offset, nl < 0 ? chunk.length : nl);
      if (nl < 0) {
        this.chunks.shift();
        this.offset = 0;
      } else this.offset = nl + 1;
      const oversized = this.take(piece);
      if (nl >= 0) {
        const line = this.endLine();
        if (oversized === undefined && line !== undefined) return line;
      }
      if (oversized !== undefined) return oversized;
    }
    return undefined;
  }

  /**
   * The peer sent its last byte: a final line without a newline is a frame too. Called
   * once `next` has nothing more; gives that line once.
   */
  flush(): FrameEvent | undefined {
    return this.endLine();
  }

  /** Bytes of an unfinished line held now. */
  get pending(): number {
    return this.size;
  }

  /** Adds a piece of the current line; the oversize event if this piece crossed the limit. */
  private take(piece: Buffer): FrameEvent | undefined {
    if (this.skipping) return undefined;
    this.size += piece.length;
    if (this.size <= this.maxBytes) {
      if (piece.length > 0) this.parts.push(piece);
      return undefined;
    }
    const head = Buffer.concat([...this.parts, piece], Math.min(this.size, ID_PREFIX_BYTES));
    const event: FrameEvent = { kind: 'oversized', bytes: this.size, id: leadingId(head.toString('latin1')) };
    this.skipping = true;
    this.parts = [];
    this.size = 0;
    return event;
  }

  private endLine(): FrameEvent | undefined {
    const skipped = this.skipping;
    const bytes = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    this.skipping = false;
    if (skipped) return undefined;
    if (!isUtf8(bytes)) return { kind: 'invalid-utf8', id: leadingId(bytes.subarray(0, ID_PREFIX_BYTES).toString('latin1')) };
    const text = bytes.toString('utf8').replace(/\r$/, '');
    return text.trim() === '' ? undefined : { kind: 'frame', text };
  }
}

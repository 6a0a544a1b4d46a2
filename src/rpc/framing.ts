/**
 * Newline-delimited frames over a byte stream, bounded: a line longer than the limit is
 * reported once and the rest of it skipped without being buffered, so a client sending
 * an endless line costs the daemon a constant amount of memory.
 */
export type FrameEvent = { readonly kind: 'frame'; readonly text: string } | { readonly kind: 'oversized'; readonly bytes: number };

export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(private readonly maxBytes: number) {}

  /** Feeds a chunk; returns the complete frames and oversize events it finished. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.skipping) {
        this.size += piece.length;
        if (this.size > this.maxBytes) {
          this.skipping = true;
          this.parts = [];
          events.push({ kind: 'oversized', bytes: this.size });
        } else if (piece.length > 0) {
          this.parts.push(piece);
        }
      }
      if (nl < 0) break;
      if (!this.skipping) {
        const text = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '');
        if (text.trim() !== '') events.push({ kind: 'frame', text });
      }
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      start = nl + 1;
    }
    return events;
  }

  /** Bytes of an unfinished line held now. */
  get pending(): number {
    return this.size;
  }
}

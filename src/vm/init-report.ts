/**
 * A report line from the guest, judged as hostile input: whatever runs in the guest can
 * write into the port. Bounded (MAX_REPORT_BYTES), valid UTF-8, one JSON object of
 * exactly the reporter's fields and types, and bound to the domain's current drive by
 * its instance-id and nonce. A rejection says why without echoing what was sent: the
 * nonce, or anything the guest chose, never reaches the log.
 */
import { timingSafeEqual } from 'node:crypto';
import { MAX_REPORT_BYTES } from '../cloudinit/init-reporter.js';

export const STAGES = ['init-local', 'init', 'modules-config', 'modules-final'] as const;
export type StageTimes = Readonly<Partial<Record<(typeof STAGES)[number], { readonly start: number | null; readonly finished: number | null }>>>;

export interface GuestReport {
  readonly instanceId: string;
  readonly status: 'done' | 'error';
  readonly errors: readonly string[];
  readonly stages: StageTimes;
  readonly bootId: string;
  /** Guest clock when the reporter wrote the line (unix seconds). */
  readonly sentAt: number | null;
}

export type Judgement = { readonly ok: true; readonly report: GuestReport } | { readonly ok: false; readonly reason: string };

const FIELDS = ['bootId', 'errors', 'instanceId', 'nonce', 'sentAt', 'stages', 'status', 'v'];
const MAX_ERRORS = 16;
const MAX_ERROR_CHARS = 500;

const reject = (reason: string): Judgement => ({ ok: false, reason });
const isTime = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

/** `expected`: the current drive's instance-id and nonce. */
export function judgeReport(line: Uint8Array, expected: { readonly instanceId: string; readonly nonce: string }): Judgement {
  if (line.length > MAX_REPORT_BYTES) return reject(`line of ${String(line.length)} bytes, over the ${String(MAX_REPORT_BYTES)}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(line);
  } catch {
    return reject('not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return reject('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return reject('not a JSON object');
  const r = value as Record<string, unknown>;
  const keys = Object.keys(r).sort();
  if (keys.length !== FIELDS.length || keys.some((k, i) => k !== FIELDS[i])) return reject('fields are not exactly the reporter\'s');
  if (r['v'] !== 1) return reject('unknown version');
  if (typeof r['nonce'] !== 'string' || !/^[0-9a-f]{32}$/.test(r['nonce'])) return reject('malformed nonce');
  if (typeof r['instanceId'] !== 'string' || r['instanceId'].length > 256) return reject('malformed instance-id');
  if (r['status'] !== 'done' && r['status'] !== 'error') return reject('status is neither done nor error');
  const errors = r['errors'];
  if (!Array.isArray(errors) || errors.length > MAX_ERRORS || errors.some((e) => typeof e !== 'string' || e.length > MAX_ERROR_CHARS)) return reject('malformed errors');
  if ((r['status'] === 'error') !== (errors.length > 0)) return reject('status and errors disagree');
  if (typeof r['bootId'] !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(r['bootId'])) return reject('malformed boot id');
  if (!isTime(r['sentAt'])) return reject('malformed send time');
  const stages = r['stages'];
  if (typeof stages !== 'object' || stages === null || Array.isArray(stages)) return reject('malformed stages');
  for (const [name, times] of Object.entries(stages)) {
    if (!(STAGES as readonly string[]).includes(name)) return reject('unknown stage');
    if (typeof times !== 'object' || times === null || Array.isArray(times)) return reject('malformed stage times');
    const t = times as Record<string, unknown>;
    if (Object.keys(t).sort().join() !== 'finished,start' || !isTime(t['start']) || !isTime(t['finished'])) return reject('malformed stage times');
  }
  // Compared in constant time: the line is the guest's guess.
  if (!timingSafeEqual(Buffer.from(r['nonce']), Buffer.from(expected.nonce))) return reject("nonce is not the current drive's");
  if (r['instanceId'] !== expected.instanceId) return reject("instance-id is not the current drive's");
  return { ok: true, report: { instanceId: r['instanceId'], status: r['status'], errors: errors as string[], stages: stages as StageTimes, bootId: r['bootId'], sentAt: r['sentAt'] as number | null } };
}

/** cloud-init's own time, guest clock: from its first stage's start to its last stage's end. */
export function cloudInitSeconds(stages: StageTimes): number | null {
  const start = STAGES.map((s) => stages[s]?.start).find((t) => typeof t === 'number');
  const end = stages['modules-final']?.finished;
  return typeof start === 'number' && typeof end === 'number' ? Math.round((end - start) * 1000) / 1000 : null;
}

/**
 * Lines from a byte stream, bounded in size and time: a line longer than the limit is
 * dropped up to its newline, and one left unfinished for `maxLineMs` (a slow writer
 * holding the port) is dropped when the next byte comes or the caller's timer asks.
 */
export class ReportLines {
  private parts: Buffer[] = [];
  private size = 0;
  /** Why the line being received is dropped, if it is: its rest is dropped up to the newline. */
  private discarding: string | undefined;
  private startedAt = 0;

  constructor(
    private readonly onLine: (line: Buffer) => void,
    private readonly onDrop: (reason: string) => void,
    private readonly maxLineMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  feed(chunk: Buffer): void {
    this.expire();
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(0x0a, from);
      const piece = chunk.subarray(from, nl < 0 ? chunk.length : nl);
      if (this.discarding === undefined) {
        if (this.size === 0 && piece.length > 0) this.startedAt = this.clock();
        if (this.size + piece.length > MAX_REPORT_BYTES) this.drop(`line over the ${String(MAX_REPORT_BYTES)}-byte limit`);
        else if (piece.length > 0) {
          this.parts.push(piece);
          this.size += piece.length;
        }
      }
      if (nl < 0) break;
      if (this.discarding === undefined && this.size > 0) this.onLine(Buffer.concat(this.parts));
      this.parts = [];
      this.size = 0;
      this.discarding = undefined;
      from = nl + 1;
    }
  }

  /** Drops a line begun more than maxLineMs ago; returns whether one was dropped. */
  expire(): boolean {
    if (this.discarding !== undefined || this.size === 0 || this.clock() - this.startedAt <= this.maxLineMs) return false;
    this.drop(`line unfinished after ${String(this.maxLineMs)} ms`);
    return true;
  }

  private drop(reason: string): void {
    this.discarding = reason;
    this.parts = [];
    this.size = 0;
    this.onDrop(reason);
  }
}

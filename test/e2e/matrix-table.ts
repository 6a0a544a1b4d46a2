/**
 * The guest matrix's table (issue 13): for each boot and check, pass or fail per guest,
 * and each guest's boot times, printed once every guest has run. A guest that did not get
 * to a boot shows `-` there, never a pass.
 */
import type { Check } from './guest-checks.js';
import { GUEST_SUITES } from './harness.js';

export interface BootTime {
  /** Host clock, from the start request to the guest's report. */
  readonly reportS: number;
  /** Guest clock: cloud-final's end after the guest's first instruction (it starts paused, then is resumed). */
  readonly cloudFinalS: number | null;
}

export class MatrixTable {
  private readonly cells = new Map<string, Map<string, Check>>();
  private readonly times = new Map<string, Map<string, BootTime>>();
  private readonly guests: string[] = [];
  private readonly notes = new Map<string, string>();

  guest(name: string, note: string): void {
    if (!this.guests.includes(name)) this.guests.push(name);
    this.notes.set(name, note);
  }

  record(guest: string, boot: string, checks: readonly Check[], time: BootTime): void {
    for (const c of checks) {
      const key = `${boot}: ${c.name}`;
      const row = this.cells.get(key) ?? new Map<string, Check>();
      row.set(guest, c);
      this.cells.set(key, row);
    }
    const t = this.times.get(guest) ?? new Map<string, BootTime>();
    t.set(boot, time);
    this.times.set(guest, t);
  }

  /** The table as text lines: checks down, guests across; then the failures' details and the times. */
  render(): string[] {
    // Oldest generation first, whichever file booted it first.
    const rank = (g: string) => GUEST_SUITES.indexOf(g as (typeof GUEST_SUITES)[number]);
    this.guests.sort((a, b) => rank(a) - rank(b));
    const width = Math.max(...[...this.cells.keys()].map((k) => k.length), 10);
    const col = Math.max(...this.guests.map((g) => g.length), 6) + 2;
    const lines = [`${'check'.padEnd(width)}${this.guests.map((g) => g.padStart(col)).join('')}`];
    for (const [key, row] of this.cells) {
      lines.push(`${key.padEnd(width)}${this.guests.map((g) => { const c = row.get(g); return (c === undefined ? '-' : c.ok ? 'pass' : 'FAIL').padStart(col); }).join('')}`);
    }
    for (const [key, row] of this.cells) {
      for (const g of this.guests) {
        const c = row.get(g);
        if (c !== undefined && !c.ok) lines.push(`FAIL ${g}, ${key}: ${c.detail.slice(0, 300)}`);
      }
    }
    for (const g of this.guests) {
      const t = [...(this.times.get(g) ?? new Map<string, BootTime>())].map(
        ([boot, bt]) => `${boot} ${bt.cloudFinalS === null ? 'no cloud-final' : `cloud-final ${bt.cloudFinalS.toFixed(1)} s`}, report ${bt.reportS.toFixed(1)} s`,
      );
      lines.push(`times ${g} (${this.notes.get(g) ?? ''}): ${t.join('; ')}`);
    }
    return lines;
  }
}

/** One table for the process: guest-boot.e2e.ts adds bookworm's boots, guest-matrix.e2e.ts the others and prints it. */
export const MATRIX_TABLE = new MatrixTable();

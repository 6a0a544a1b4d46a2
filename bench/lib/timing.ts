/** Small helpers for the benchmarks: medians of repeated runs, and aligned tables. */

export interface Sample {
  readonly median: number;
  readonly p99: number;
  readonly runs: number;
}

/** Runs `fn` for about `budgetMs` (at least `minRuns` times) after a warm-up; times in ms. */
export async function measure(fn: () => unknown, options: { budgetMs?: number; minRuns?: number; warmup?: number } = {}): Promise<Sample> {
  const { budgetMs = 1000, minRuns = 20, warmup = 5 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const end = performance.now() + budgetMs;
  while (times.length < minRuns || performance.now() < end) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    if (times.length >= 100_000) break;
  }
  return summarize(times);
}

export function summarize(times: readonly number[]): Sample {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { median: at(0.5), p99: at(0.99), runs: sorted.length };
}

export function formatMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(1)} us`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Logging to stderr, one line per event, for journald: with JOURNAL_STREAM set (stderr
 * connected to the journal) each line starts with a syslog priority prefix such as <6>,
 * which journald turns into the entry's priority; otherwise lines carry a timestamp.
 * Values are printed with util.format semantics, so a Redacted secret prints as a mask.
 */
import { formatWithOptions } from 'node:util';

export type Level = 'error' | 'warning' | 'info' | 'debug';
const PRIORITY: Record<Level, number> = { error: 3, warning: 4, info: 6, debug: 7 };

export interface Logger {
  error(message: string, fields?: Record<string, unknown>): void;
  warning(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  level: Level;
}

/** key=value pairs; values with spaces or quotes are JSON-quoted so a line stays parseable. */
export function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const text = typeof v === 'string' ? v : formatWithOptions({ breakLength: Infinity, compact: true }, '%O', v);
      return `${k}=${/^[\w./:@+-]*$/.test(text) && text !== '' ? text : JSON.stringify(text)}`;
    })
    .join(' ');
}

export function createLogger(options: { level?: Level; write?: (line: string) => void; journal?: boolean } = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const journal = options.journal ?? process.env['JOURNAL_STREAM'] !== undefined;
  const logger: Logger = {
    level: options.level ?? 'info',
    error: (m, f) => emit('error', m, f),
    warning: (m, f) => emit('warning', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
  };
  function emit(level: Level, message: string, fields: Record<string, unknown> = {}): void {
    if (PRIORITY[level] > PRIORITY[logger.level]) return;
    const body = [message.replace(/\n/g, ' '), formatFields(fields)].filter((s) => s !== '').join(' ');
    write(journal ? `<${String(PRIORITY[level])}>${body}\n` : `${new Date().toISOString()} ${level} ${body}\n`);
  }
  return logger;
}

/**
 * The shape every `configdrive` sub-command has, and the exit statuses scripts can test.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT = {
  OK: 0,
  /** The operation failed (bad input file, libvirt error, ...): one line on stderr says why. */
  FAILED: 1,
  /** The command line itself is wrong. */
  USAGE: 2,
} as const;

export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
}

export interface Command {
  readonly name: string;
  /** One line for `configdrive --help`. */
  readonly summary: string;
  /** Full help text for `configdrive NAME --help`, starting with the usage line. */
  readonly help: string;
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** Thrown for a wrong command line; the runner prints it with a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** util.parseArgs, but a wrong flag becomes a UsageError with the parser's own wording. */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: readonly string[],
  options: T,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

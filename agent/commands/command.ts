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

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Options every command takes after its name and `configdrive` takes before it, with the
 * same meaning (as `virsh -c URI cmd`). --socket only means something to the commands
 * that talk to the daemon; the others refuse it (parseCommandLine).
 */
export const GLOBAL_OPTIONS = {
  socket: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies Options;

const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const satisfies Options;

function parse<T extends Options>(argv: readonly string[], options: T, allowPositionals: boolean) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * util.parseArgs, but a wrong flag becomes a UsageError with the parser's own wording.
 * --socket is always recognised, so that a command without it (one that works offline)
 * says so instead of calling it unknown.
 */
export function parseCommandLine<T extends Options>(argv: readonly string[], options: T, allowPositionals = true) {
  const parsed = parse(argv, { socket: GLOBAL_OPTIONS.socket, ...options }, allowPositionals);
  if (!Object.hasOwn(options, 'socket') && 'socket' in parsed.values) throw new UsageError('--socket is for the commands that talk to the daemon; this one works offline');
  return parsed;
}

/**
 * `configdrive [GLOBAL OPTIONS] COMMAND ARGS...` split at the command name. The global
 * options before it are checked here and handed to the command ahead of its own
 * arguments, so they mean what they mean after the name, and a later one wins.
 */
export function splitCommandLine(argv: readonly string[]): { name: string | undefined; args: string[]; help: boolean } {
  const takesValue = new Set(Object.entries(GLOBAL_OPTIONS).flatMap(([name, o]) => (o.type === 'string' ? [`--${name}`] : [])));
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '-' && argv[i] !== '--') i += takesValue.has(argv[i]!) ? 2 : 1;
  const leading = argv.slice(0, i);
  const { values } = parse(leading, { ...GLOBAL_OPTIONS, ...HELP_OPTION }, false);
  return { name: argv[i], args: [...leading, ...argv.slice(i + 1)], help: values.help };
}

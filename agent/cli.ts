/**
 * `configdrive`: the command-line tool. `pack`, `inspect` and `build` work offline;
 * the rest talk to configdrived over its socket.
 */
import { AgentError, formatProblem } from '../src/errors.js';
import { buildCommand } from './commands/build.js';
import { DEFAULT_SOCKET, clientCommands } from './commands/client.js';
import { EXIT, UsageError, splitCommandLine, type Command, type Io } from './commands/command.js';
import { inspectCommand } from './commands/inspect.js';
import { packCommand } from './commands/pack.js';

const commands: readonly Command[] = [buildCommand, packCommand, inspectCommand, ...clientCommands];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 0);
  return [
    'Usage: configdrive [--socket PATH] [--json] COMMAND [ARGS...]',
    '',
    'Builds cloud-init config drives (ISO9660, label config-2) and puts them in front of',
    'libvirt domains through the configdrived daemon.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options, before or after COMMAND:',
    `  --socket PATH  the daemon's socket (default ${DEFAULT_SOCKET},`,
    '                 or $CONFIGDRIVE_SOCKET); build, pack and inspect work offline and refuse it',
    '  --json         print the result as JSON',
    "  -h, --help     this text, or COMMAND's",
    '',
    "Run 'configdrive COMMAND --help' for a command's options.",
    'Exit status: 0 success, 1 the operation failed, 2 wrong command line.',
    '',
  ].join('\n');
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  if (argv.length === 0) {
    io.stdout.write(mainHelp());
    return EXIT.USAGE;
  }
  let split;
  try {
    split = splitCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`configdrive: ${err.message}; see 'configdrive --help'\n`);
    return EXIT.USAGE;
  }
  const { name, args: rest, help } = split;
  if (name === 'help' || (name === undefined && help)) {
    io.stdout.write(mainHelp());
    return EXIT.OK;
  }
  if (name === undefined) {
    io.stderr.write(`configdrive: no COMMAND after the options; see 'configdrive --help'\n`);
    return EXIT.USAGE;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`configdrive: unknown command '${name}'; see 'configdrive --help'\n`);
    return EXIT.USAGE;
  }
  if (help || rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help.endsWith('\n') ? command.help : command.help + '\n');
    return EXIT.OK;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`configdrive ${name}: ${err.message}; see 'configdrive ${name} --help'\n`);
      return EXIT.USAGE;
    }
    if (err instanceof AgentError) {
      io.stderr.write(`configdrive ${name}: ${err.message} [${err.code}]\n`);
      for (const p of err.problems.slice(1)) io.stderr.write(`  ${formatProblem(p)}\n`);
      return EXIT.FAILED;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`configdrive ${name}: ${message}\n`);
    return EXIT.FAILED;
  }
}

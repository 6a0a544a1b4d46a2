#!/usr/bin/env node
// `configdrive` entry point: the only place that sets the exit status.
import { main } from './cli.js';
import { EXIT } from './commands/command.js';

main(process.argv.slice(2), process).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`configdrive: ${String(err)}\n`);
    process.exitCode = EXIT.FAILED;
  },
);

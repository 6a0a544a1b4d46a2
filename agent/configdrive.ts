#!/usr/bin/env node
// `configdrive` entry point: the only place that sets the exit status.
import { main } from './cli.js';
import { EXIT } from './commands/command.js';

// `configdrive list | head -1`: a reader that goes away is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.OK);
  throw err;
});

main(process.argv.slice(2), process).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`configdrive: ${String(err)}\n`);
    process.exitCode = EXIT.FAILED;
  },
);

/** `configdrive` run in this process, as a user would run it: its output and exit status. */
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../agent/cli.js';

export async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await main(argv, { stdout, stderr, stdin: Readable.from([stdin]) });
  return { code, out, err };
}

/**
 * `configdrive pack DIR -o FILE.iso`: a directory as it is, packed into an image. Only
 * regular files and directories are taken; a symlink or a device in DIR is an error, not
 * something silently followed or dropped.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { createIsoWriter, readIsoImage, WRITER_NAMES, type WriterName } from '../../src/iso/index.js';
import { writeFileAtomic } from '../../src/payload/atomic-write.js';
import { sha256Hex } from '../../src/payload/build-drive.js';
import { EXIT, UsageError, parseCommandLine, type Command, type Io } from './command.js';

const help = `Usage: configdrive pack DIR -o FILE.iso [--label L] [--writer builtin|genisoimage] [--json]

Packs the files and directories under DIR into an ISO9660 image with Rock Ridge and
Joliet names, then reads the image back to check it.

Options:
  -o, --output FILE   the image to write (mode 0640, written atomically)
      --label L       volume label, 1-32 printable ASCII characters (default config-2)
      --writer W      builtin (default, in-process) or genisoimage (the classic tool)
      --json          print the summary as JSON
  -h, --help          this text

Symbolic links and special files in DIR are refused. Exit status: 0 packed, 1 DIR
cannot be packed (the message names the path), 2 wrong command line.
`;

async function walk(root: string, rel: string, files: Map<string, Uint8Array>, dirs: string[]): Promise<void> {
  const entries = await readdir(join(root, rel));
  for (const name of entries.sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const info = await lstat(join(root, path));
    if (info.isDirectory()) {
      dirs.push(path);
      await walk(root, path, files, dirs);
    } else if (info.isFile()) {
      files.set(path, await readFile(join(root, path)));
    } else {
      throw new AgentError('INVALID_TREE', `${join(root, path)} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file or directory'}; only files and directories can be packed`);
    }
  }
}

export const packCommand: Command = {
  name: 'pack',
  summary: 'pack a directory into an ISO9660 image (offline)',
  help,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, {
      output: { type: 'string', short: 'o' },
      label: { type: 'string', default: 'config-2' },
      writer: { type: 'string', default: 'builtin' },
      json: { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one DIR');
    if (values.output === undefined) throw new UsageError('give the image to write with -o FILE.iso');
    const writer = values.writer as WriterName;
    if (!WRITER_NAMES.includes(writer)) throw new UsageError(`--writer must be builtin or genisoimage, not '${values.writer}'`);
    const root = positionals[0]!;
    const started = performance.now();
    const files = new Map<string, Uint8Array>();
    const directories: string[] = [];
    try {
      if (!(await lstat(root)).isDirectory()) throw new AgentError('INVALID_TREE', `${root} is not a directory`);
      await walk(root, '', files, directories);
    } catch (err) {
      if (err instanceof AgentError) throw err;
      throw new AgentError('IO_ERROR', `cannot read ${root}: ${String((err as NodeJS.ErrnoException).code ?? err)}`, { cause: err });
    }
    const bytes = await createIsoWriter(writer).write({ files, directories }, { volumeId: values.label });
    const check = readIsoImage(bytes);
    if (check.volumeId !== values.label || check.files.size !== files.size) {
      throw new AgentError('ISO_VERIFY_FAILED', `the ${writer} writer produced an image that does not read back as written`);
    }
    await writeFileAtomic(values.output, bytes, 0o640);
    const summary = { image: values.output, label: values.label, writer, files: files.size, directories: directories.length, bytes: bytes.length, sha256: sha256Hex(bytes), elapsedMs: Math.round((performance.now() - started) * 10) / 10 };
    io.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${summary.image}: ${String(summary.files)} files, ${String(summary.directories)} directories, ${String(summary.bytes)} bytes, label ${summary.label}, ${writer} writer, ${String(summary.elapsedMs)} ms\nsha256 ${summary.sha256}\n`);
    return EXIT.OK;
  },
};

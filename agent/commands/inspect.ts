/** `configdrive inspect FILE.iso`: what a guest would find on an image. */
import { readIsoFile } from '../../src/iso/index.js';
import { sha256Hex } from '../../src/payload/build-drive.js';
import { EXIT, UsageError, parseCommandLine, type Command, type Io } from './command.js';

const help = `Usage: configdrive inspect FILE.iso [--names rockridge|joliet|iso9660] [--json]

Reads an ISO9660 image with the agent's own reader (the one it verifies drives with
before attaching them) and prints its label, which extensions it has, and every file
with its size and sha256. Malformed images are reported, never half-read.

Options:
      --names N   name space to list: rockridge, joliet or iso9660 (default: the best present)
      --json      machine-readable output
  -h, --help      this text

Exit status: 0 read, 1 unreadable or malformed image, 2 wrong command line.
`;

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show the label, extensions and files of an ISO image (offline)',
  help,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, { json: { type: 'boolean', default: false }, names: { type: 'string' } });
    if (positionals.length !== 1) throw new UsageError('expected exactly one FILE.iso');
    const names = values.names;
    if (names !== undefined && names !== 'rockridge' && names !== 'joliet' && names !== 'iso9660') throw new UsageError(`--names must be rockridge, joliet or iso9660, not '${names}'`);
    const image = await readIsoFile(positionals[0]!, names === undefined ? {} : { names });
    const files = [...image.files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, bytes]) => ({ path, size: bytes.length, sha256: sha256Hex(bytes) }));
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ label: image.volumeId, extensions: image.extensions, names: image.names, directories: image.directories, files }, null, 2)}\n`);
      return EXIT.OK;
    }
    const ext = [image.extensions.rockRidge ? 'Rock Ridge' : '', image.extensions.joliet ? 'Joliet' : ''].filter((s) => s !== '').join(', ') || 'none';
    io.stdout.write(`label       ${image.volumeId}\nextensions  ${ext}\nnames       ${image.names}\n`);
    const width = Math.max(4, ...files.map((f) => String(f.size).length));
    for (const f of files) io.stdout.write(`${String(f.size).padStart(width)}  ${f.sha256.slice(0, 16)}  ${f.path}\n`);
    io.stdout.write(`${String(files.length)} files, ${String(image.directories.length)} directories\n`);
    return EXIT.OK;
  },
};

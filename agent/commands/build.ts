/**
 * `configdrive build INPUT -o FILE.iso`: initialization settings to a finished config
 * drive, offline. The same parse -> hash -> translate -> pack path the daemon uses.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { DEFAULT_DRIVE_FORMAT, DRIVE_FORMATS, DRIVE_LABELS, isDriveFormat, labelProblem, NOCLOUD_PATHS, USER_DATA_PATH } from '../../src/cloudinit/index.js';
import type { DomainFacts } from '../../src/cloudinit/types.js';
import { AgentError } from '../../src/errors.js';
import { detectFormat, inCallerTerms, parseInitialization } from '../../src/initialization/index.js';
import type { Initialization } from '../../src/initialization/types.js';
import { createIsoWriter, validateVolumeId } from '../../src/iso/index.js';
import { writeFileAtomic } from '../../src/payload/atomic-write.js';
import { buildDriveImage } from '../../src/payload/build-drive.js';
import { EXIT, UsageError, parseCommandLine, type Command, type Io } from './command.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
/** Inputs larger than this are refused before parsing (the parsers have their own limit). */
const MAX_INPUT_BYTES = 8 * 1024 * 1024;

const help = `Usage: configdrive build INPUT (-o FILE.iso | --tree DIR) [options]

Turns initialization settings into a cloud-init config drive (ISO9660), without a daemon
or libvirt: by default label config-2 with the OpenStack config-drive v2 layout
(cloud-init's ConfigDrive); with --format nocloud label cidata with meta-data, user-data
and network-config at the root (cloud-init's NoCloud; docs/nocloud.md).

INPUT is a file (.xml: oVirt REST <initialization> or <vm>; .json: oVirt JSON, the
Python SDK v3 cloud_init shape or the native schema; .yaml/.yml: native schema) or '-'
for standard input (format detected from the content).

Options:
  -o, --output FILE   write the ISO image here (mode 0640, written atomically)
      --tree DIR      write the drive's files into DIR instead of (or as well as) an image
      --uuid UUID     the domain's UUID: becomes meta_data.json uuid (cloud-init's
                      instance-id). Without it a random UUID is used and said so.
      --mac NAME=MAC  MAC address of the request's NIC NAME (repeatable), so that
                      network_data.json matches the guest NIC by MAC
      --format F      configdrive (default) or nocloud
      --writer W      builtin (default) or genisoimage
      --label L       volume label (default config-2, or cidata with --format nocloud);
                      a label no datasource reads for the format is refused
      --print         print every generated file (passwords appear only as hashes)
      --json          print the summary as JSON
  -h, --help          this text

Exit status: 0 built, 1 invalid input or write failure (one line on stderr says which
field or file), 2 wrong command line.
`;

export const buildCommand: Command = {
  name: 'build',
  summary: 'build a config drive from initialization settings (offline)',
  help,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const { values, positionals } = parseCommandLine(argv, {
      output: { type: 'string', short: 'o' },
      tree: { type: 'string' },
      uuid: { type: 'string' },
      mac: { type: 'string', multiple: true },
      writer: { type: 'string', default: 'builtin' },
      format: { type: 'string', default: DEFAULT_DRIVE_FORMAT },
      label: { type: 'string' },
      print: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one INPUT (a file or -)');
    const input = positionals[0]!;
    if (values.output === undefined && values.tree === undefined) throw new UsageError('give -o FILE.iso or --tree DIR');
    const writer = values.writer;
    if (writer !== 'builtin' && writer !== 'genisoimage') throw new UsageError(`--writer must be builtin or genisoimage, not '${writer}'`);
    if (values.uuid !== undefined && !UUID.test(values.uuid)) throw new UsageError(`--uuid '${values.uuid}' is not a UUID`);
    const macs = parseMacs(values.mac ?? []);
    const format = values.format;
    if (!isDriveFormat(format)) throw new UsageError(`--format must be ${DRIVE_FORMATS.join(' or ')}, not '${format}'`);
    const label = values.label ?? DRIVE_LABELS[format];

    validateVolumeId(label);
    // Checked again where the drive is built; here so that nothing is read first.
    const refused = labelProblem(format, label);
    if (refused !== undefined) throw new AgentError('INVALID_LABEL', refused);
    const started = performance.now();
    const source = await readInput(input, io);
    const parsed = parseInitialization(source, detectFormat(new TextDecoder().decode(source.subarray(0, 4096)), input === '-' ? undefined : input));
    const init = withMacs(parsed.initialization, macs);
    const warnings = [...parsed.warnings];
    let uuid = values.uuid;
    if (uuid === undefined && init.instanceId === undefined) {
      uuid = randomUUID();
      warnings.push(`no --uuid given: using a random domain UUID ${uuid} (instance-id ${uuid}-g1); pass the domain's UUID so the drive's instance belongs to it`);
    }
    const facts: DomainFacts = { uuid: uuid ?? init.instanceId ?? '', nics: [] };

    // The image is built (and read back) even for --tree alone: what lands in DIR is
    // exactly what would be on the drive.
    const drive = await inCallerTerms(parsed.sources, () => buildDriveImage(init, facts, { writer: createIsoWriter(writer), format, label }));
    warnings.push(...drive.warnings);
    for (const w of warnings) io.stderr.write(`configdrive build: warning: ${w}\n`);

    if (values.tree !== undefined) await writeTree(values.tree, drive.tree);
    let image: { path: string; size: number; sha256: string } | undefined;
    if (values.output !== undefined) {
      await writeFileAtomic(values.output, drive.bytes, 0o640);
      image = { path: values.output, size: drive.bytes.length, sha256: drive.sha256 };
    }
    const elapsedMs = Math.round((performance.now() - started) * 10) / 10;

    const files = [...drive.tree].map(([path, bytes]) => ({ path, size: bytes.length }));
    if (values.json) {
      io.stdout.write(JSON.stringify({ instanceId: drive.instance.instanceId, format, label, writer: values.writer, image, tree: values.tree, files, warnings, elapsedMs }, null, 2) + '\n');
    } else {
      io.stdout.write(`instance-id  ${drive.instance.instanceId}\n`);
      if (image !== undefined) io.stdout.write(`image        ${image.path} (${image.size} bytes, ${format}, label ${label}, sha256 ${image.sha256})\n`);
      if (values.tree !== undefined) io.stdout.write(`tree         ${values.tree}\n`);
      for (const f of files) io.stdout.write(`  ${String(f.size).padStart(7)}  ${f.path}\n`);
      io.stdout.write(`built in ${String(elapsedMs)} ms with the ${values.writer} writer\n`);
    }
    if (values.print) {
      for (const [path, bytes] of drive.tree) {
        io.stdout.write(`\n==> ${path} <==\n${Buffer.from(bytes).toString('utf8')}`);
        if (!Buffer.from(bytes).toString('utf8').endsWith('\n')) io.stdout.write('\n');
      }
    }
    return EXIT.OK;
  },
};

function parseMacs(specs: readonly string[]): Map<string, string> {
  const macs = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const mac = spec.slice(eq + 1);
    if (eq <= 0 || !MAC.test(mac)) throw new UsageError(`--mac '${spec}' is not NAME=aa:bb:cc:dd:ee:ff`);
    if (macs.has(name)) throw new UsageError(`--mac gives ${name} twice`);
    macs.set(name, mac.toLowerCase());
  }
  return macs;
}

function withMacs(init: Initialization, macs: ReadonlyMap<string, string>): Initialization {
  const known = new Set(init.nics.map((n) => n.name));
  for (const name of macs.keys()) {
    if (!known.has(name)) throw new UsageError(`--mac names NIC '${name}', which the input does not configure`);
  }
  if (macs.size === 0) return init;
  return { ...init, nics: init.nics.map((nic) => { const mac = macs.get(nic.name); return mac === undefined ? nic : { ...nic, mac }; }) };
}

/** Bytes, not text: the parser is the one that rejects invalid UTF-8, naming it. */
async function readInput(input: string, io: Io): Promise<Uint8Array> {
  let data: Buffer;
  try {
    data = input === '-' ? await buffer(io.stdin) : await readFile(input);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new AgentError('IO_ERROR', `cannot read ${input === '-' ? 'standard input' : input}: ${reason}`, { cause: err });
  }
  if (data.length > MAX_INPUT_BYTES) {
    throw new AgentError('INVALID_INITIALIZATION', `${input === '-' ? 'standard input' : input} is ${String(data.length)} bytes, over the ${String(MAX_INPUT_BYTES)}-byte limit`);
  }
  return data;
}

/** The user data holds password hashes: readable by its owner only. */
const USER_DATA_NAMES = new Set([basename(USER_DATA_PATH), NOCLOUD_PATHS.userData]);

async function writeTree(root: string, tree: ReadonlyMap<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of tree) {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true, mode: 0o750 });
    await writeFile(target, bytes, { mode: USER_DATA_NAMES.has(basename(path)) ? 0o600 : 0o640 });
  }
}

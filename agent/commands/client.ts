/**
 * The `configdrive` commands that talk to configdrived: caps, list, get, watch, start,
 * create, attach, detach. Human output by default, --json for scripts; the daemon's error code
 * ends the one-line message on stderr.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { DEFAULT_DRIVE_FORMAT, DRIVE_FORMATS, isDriveFormat } from '../../src/cloudinit/index.js';
import { AgentError } from '../../src/errors.js';
import { detectFormat } from '../../src/initialization/index.js';
import { RpcClient } from '../../src/rpc/client.js';
import { EXIT, GLOBAL_OPTIONS, UsageError, parseCommandLine, type Command, type Io } from './command.js';
import { waitCommand } from './wait.js';

export const DEFAULT_SOCKET = '/run/configdrived/configdrived.sock';

/** Well inside the daemon's smallest sensible idleTimeoutMs. */
const WATCH_KEEPALIVE_MS = 15_000;

const COMMON = `
Options:
      --socket PATH   the daemon's socket (default ${DEFAULT_SOCKET}, or $CONFIGDRIVE_SOCKET)
      --json          print the daemon's answer as JSON
  -h, --help          this text

Exit status: 0 done, 1 the daemon reported an error (its code ends the message), 2 wrong command line.
`;

async function connect(socket: string | undefined): Promise<RpcClient> {
  return RpcClient.connect(socket ?? process.env['CONFIGDRIVE_SOCKET'] ?? DEFAULT_SOCKET);
}

async function readSource(input: string, io: Io): Promise<Record<string, unknown>> {
  // A drive built earlier is named, not sent: the daemon takes it only from directories it trusts.
  if (input.toLowerCase().endsWith('.iso')) return { image: resolve(input) };
  let bytes: Buffer;
  try {
    bytes = input === '-' ? await buffer(io.stdin) : await readFile(input);
  } catch (err) {
    throw new AgentError('IO_ERROR', `cannot read ${input}: ${String((err as NodeJS.ErrnoException).code ?? err)}`);
  }
  const text = bytes.toString('utf8');
  return { initialization: text, format: detectFormat(text, input === '-' ? undefined : input) };
}

function print(io: Io, json: boolean, value: unknown, human: (v: never) => string): void {
  io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : human(value as never));
}

interface AttachView {
  domain: { name: string; uuid: string };
  changed: boolean;
  device: { target: string; bus: string };
  path: string;
  sha256: string;
  size: number;
  label: string;
  instanceId: string;
  generation: number;
  reason: string;
  persistent: boolean;
  verified: { liveSource: boolean; label: string; files: number };
  warnings: string[];
  deferred: string | null;
}

function attachText(v: AttachView): string {
  return [
    `domain       ${v.domain.name} (${v.domain.uuid})`,
    `drive        ${v.device.bus} ${v.device.target} <- ${v.path}${v.changed ? '' : ' (unchanged)'}`,
    `image        ${String(v.size)} bytes, label ${v.label}, sha256 ${v.sha256}`,
    `instance-id  ${v.instanceId} (generation ${String(v.generation)}, ${v.reason})`,
    ...(v.persistent ? [] : ['run once     the drive is in this run only; the definition has none']),
    ...(v.deferred === null ? [] : [`deferred     ${v.deferred}`]),
    `verified     label ${v.verified.label}, ${String(v.verified.files)} files read back from disk${v.verified.liveSource ? ', live XML shows the drive' : ''}`,
    ...v.warnings.map((w) => `warning      ${w}`),
    '',
  ].join('\n');
}

const REINITIALIZE_HELP = `
      --reinitialize  a new instance even if the settings are unchanged: cloud-init in the
                      guest runs its first-boot modules again on the next boot`;

const FORMAT_HELP = `
      --format F      the drive's layout: ${DRIVE_FORMATS.join(' or ')} (default ${DEFAULT_DRIVE_FORMAT}, label
                      config-2); nocloud writes cloud-init's NoCloud files under label
                      cidata. Only for an initialization file: a .iso keeps its own`;

const RUN_ONCE_HELP = `
      --run-once      oVirt's Run Once: the drive is in this run only, the definition keeps
                      none, and the next plain start boots without it (cloud-init then does
                      not run at all)`;

function domainCommand(name: 'start' | 'attach', method: 'VM.start' | 'Payload.attach', summary: string, detail: string): Command {
  const runOnce = name === 'start';
  return {
    name,
    summary,
    help:
      `Usage: configdrive ${name} DOMAIN INPUT [--format F] [--reinitialize]${runOnce ? ' [--run-once]' : ''} [--socket PATH] [--json]\n\n${detail}\nDOMAIN is a name or UUID; INPUT an initialization file (.xml, .json, .yaml), - for stdin,\nor a drive built earlier (.iso: a Payload.build result, or a file in a directory the\ndaemon's imageDirs setting allows).\n\n` +
      `Instance-ids: the agent names each drive <domain-uuid>-g<N>. N stays while the settings\nstay (the guest re-runs nothing) and goes up when they change (the guest applies them\non its next boot, keeping its SSH host keys unless regenerate_ssh_keys is set).\n` +
      `${COMMON.replace('\nOptions:', `\nOptions:${FORMAT_HELP}${REINITIALIZE_HELP}${runOnce ? RUN_ONCE_HELP : ''}`)}`,
    async run(argv, io) {
      const { values, positionals } = parseCommandLine(argv, {
        ...GLOBAL_OPTIONS,
        format: { type: 'string' },
        reinitialize: { type: 'boolean', default: false },
        'run-once': { type: 'boolean', default: false },
      });
      if (positionals.length !== 2) throw new UsageError('expected DOMAIN and INPUT');
      if (!runOnce && values['run-once']) throw new UsageError('--run-once is for configdrive start');
      const format = values.format;
      if (format !== undefined && !isDriveFormat(format)) throw new UsageError(`--format must be ${DRIVE_FORMATS.join(' or ')}, not '${format}'`);
      const source = await readSource(positionals[1]!, io);
      if (format !== undefined && 'image' in source) throw new UsageError('--format is for an initialization file; a drive built earlier (.iso) keeps its own format');
      const client = await connect(values.socket);
      const flags = {
        ...(format === undefined ? {} : { driveFormat: format }),
        ...(values.reinitialize ? { reinitialize: true } : {}),
        ...(values['run-once'] ? { persistent: false } : {}),
      };
      try {
        print(io, values.json, await client.call(method, { domain: positionals[0]!, ...source, ...flags }), attachText);
      } finally {
        client.close();
      }
      return EXIT.OK;
    },
  };
}

interface CreateView {
  domain: { name: string; uuid: string };
  device: { target: string; bus: string };
  path: string;
  label: string;
  instanceId: string;
  paused: boolean;
  warnings: string[];
}

/** VDSM's VM.create: the XML file is sent as it is; the daemon reads and checks it. */
const createCommand: Command = {
  name: 'create',
  summary: "define and start a domain from oVirt engine's VM.create XML, its PAYLOAD: CD-ROM filled",
  help:
    "Usage: configdrive create DOMAIN_XML [--socket PATH] [--json]\n\nDOMAIN_XML (a file, or - for stdin) is the domain XML oVirt engine sends VDSM's VM.create:\na CD-ROM whose source is PAYLOAD: and its files in <ovirt-vm:payload> metadata. The\ndomain is defined with the payload built in its place, started paused, verified, and\nresumed unless <ovirt-vm:launchPaused> is true. On any failure nothing is left.\n" +
    COMMON,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(argv, GLOBAL_OPTIONS);
    if (positionals.length !== 1) throw new UsageError('expected exactly one DOMAIN_XML');
    const input = positionals[0]!;
    let domainXml: string;
    try {
      domainXml = (input === '-' ? await buffer(io.stdin) : await readFile(input)).toString('utf8');
    } catch (err) {
      throw new AgentError('IO_ERROR', `cannot read ${input}: ${String((err as NodeJS.ErrnoException).code ?? err)}`);
    }
    const client = await connect(values.socket);
    try {
      print(io, values.json, await client.call('VM.create', { domainXml }), (v: CreateView) =>
        [`domain       ${v.domain.name} (${v.domain.uuid})${v.paused ? ', paused (launchPaused)' : ', running'}`, `drive        ${v.device.bus} ${v.device.target} <- ${v.path} (label ${v.label})`, `instance-id  ${v.instanceId}`, ...v.warnings.map((w) => `warning      ${w}`), ''].join('\n'),
      );
    } finally {
      client.close();
    }
    return EXIT.OK;
  },
};

function simpleCommand(name: string, method: string, summary: string, usage: string, withDomain: boolean, human: (v: never) => string): Command {
  return {
    name,
    summary,
    help: `Usage: configdrive ${name}${usage} [--socket PATH] [--json]\n\n${summary}.\n${COMMON}`,
    async run(argv, io) {
      const { values, positionals } = parseCommandLine(argv, GLOBAL_OPTIONS);
      if (positionals.length !== (withDomain ? 1 : 0)) throw new UsageError(withDomain ? 'expected exactly one DOMAIN' : 'takes no arguments');
      const client = await connect(values.socket);
      try {
        print(io, values.json, await client.call(method, withDomain ? { domain: positionals[0]! } : {}), human);
      } finally {
        client.close();
      }
      return EXIT.OK;
    },
  };
}

interface PayloadEntry {
  domain: { name: string; uuid: string };
  payload: { path: string; target: string; bus: string; instanceId: string; attachedAt: string; generation?: number; reason?: string; runOnce?: boolean } | null;
  pending: boolean;
  lineage?: { instanceId: string; generation: number } | null;
  initialization?: { state: string; since: string; reportedAt?: string; pendingSeconds?: number; errors?: string[] } | null;
}

function initText(v: PayloadEntry): string {
  const i = v.initialization;
  if (i === undefined || i === null) return '';
  if (i.state === 'pending') return `initialized  pending since ${i.since} (${String(i.pendingSeconds ?? 0)} s)\n`;
  return `initialized  ${i.state} at ${i.reportedAt ?? '?'}\n${(i.errors ?? []).map((e) => `  error: ${e}\n`).join('')}`;
}

function getText(v: PayloadEntry): string {
  if (v.payload === null) {
    const last = v.lineage === undefined || v.lineage === null ? '' : `; the last instance it gave the guest was ${v.lineage.instanceId}`;
    return `${v.domain.name}: no drive from this agent${last}\n`;
  }
  const p = v.payload;
  const generation = p.generation === undefined ? '' : `generation ${String(p.generation)}${p.reason === undefined ? '' : ` (${p.reason})`}\n`;
  return `${payloadLine(v)}path ${p.path}\nattached ${p.attachedAt}${p.runOnce === true ? ' (run once)' : ''}\n${generation}${initText(v)}`;
}

const payloadLine = (e: PayloadEntry) =>
  `${e.domain.name.padEnd(24)} ${e.payload === null ? '-' : `${e.payload.bus} ${e.payload.target}`.padEnd(10)} ${e.payload?.instanceId ?? '-'}${e.pending ? ' (change pending)' : ''}\n`;

/** VM.initialized in one line: domain, outcome, cloud-init's time and errors. */
function initializedText(params: unknown): string {
  const p = params as { domain?: { name?: string }; instanceId?: string; status?: string; seconds?: number | null; errors?: string[] };
  const errors = (p.errors ?? []).length === 0 ? '' : ` errors: ${JSON.stringify(p.errors)}`;
  return `${p.domain?.name ?? '?'} ${p.status ?? '?'} ${p.instanceId ?? ''}${p.seconds == null ? '' : ` (cloud-init ${String(p.seconds)} s)`}${errors}`;
}

export const clientCommands: readonly Command[] = [
  simpleCommand('caps', 'Host.getCapabilities', "show the daemon's version, libvirt's, and what it can build", '', false, (v: { agent: { version: string }; libvirt: { library: string; hypervisor: string; uri: string }; isoWriter: string }) =>
    `configdrive-agent ${v.agent.version}\nlibvirt ${v.libvirt.library}, hypervisor ${v.libvirt.hypervisor}, ${v.libvirt.uri}\nISO writer ${v.isoWriter}\n`),
  simpleCommand('list', 'Payload.list', 'list the domains that have a drive from this agent', '', false, (v: PayloadEntry[]) => (v.length === 0 ? 'no drives\n' : v.map(payloadLine).join(''))),
  simpleCommand('get', 'Payload.get', "show a domain's drive from this agent", ' DOMAIN', true, getText),
  domainCommand('start', 'VM.start', 'start a shut-off domain with a config drive (build, attach, verify, resume)', 'Builds the drive, puts it in the persistent definition, starts the domain paused,\nverifies what QEMU has, and resumes it. On any failure the domain is left as it was.'),
  createCommand,
  domainCommand('attach', 'Payload.attach', "put a config drive in front of a domain without starting it", 'Shut off: the drive goes into the definition. Running: the media of the agent\'s\nCD-ROM is changed (a new instance-id makes cloud-init run again).'),
  simpleCommand('detach', 'Payload.detach', "remove the agent's drive from a domain and delete its image", ' DOMAIN', true, (v: { domain: { name: string }; removed: { path: string } | null; deferred: string | null }) =>
    v.deferred === null ? `${v.domain.name}: removed ${v.removed?.path ?? 'the drive'}\n` : `${v.domain.name}: removed from the definition; ${v.deferred}\n`),
  waitCommand(connect),
  {
    name: 'watch',
    summary: 'print notifications (drives attached and removed, VM.initialized) as they happen',
    help: `Usage: configdrive watch [--socket PATH] [--json]\n\nPrints one line per notification until interrupted.\n${COMMON}`,
    async run(argv: readonly string[], io: Io): Promise<number> {
      const { values, positionals } = parseCommandLine(argv, GLOBAL_OPTIONS);
      if (positionals.length !== 0) throw new UsageError('takes no arguments');
      const client = await connect(values.socket);
      client.onNotification((method, params) => {
        io.stdout.write(values.json ? `${JSON.stringify({ method, params })}\n` : `${new Date().toISOString()} ${method} ${method === 'VM.initialized' ? initializedText(params) : JSON.stringify(params)}\n`);
      });
      // The daemon closes a connection that sends no request for idleTimeoutMs (60 s by
      // default): a cheap request now and then keeps this one, and notices a daemon gone.
      let lost: unknown;
      let keepalive: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        keepalive = setInterval(() => {
          client.call('Payload.list').catch((err: unknown) => {
            lost = err;
            resolve();
          });
        }, WATCH_KEEPALIVE_MS);
      });
      clearInterval(keepalive);
      client.close();
      if (lost !== undefined) throw lost;
      return EXIT.OK;
    },
  },
];

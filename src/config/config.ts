/**
 * configdrived's configuration: one table (key, type, default, meaning, reloadable),
 * read from YAML (main file, then drop-ins in lexical order), then command-line flags.
 * Every bad or unknown key is reported with the file it came from.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { AgentError, invalid, type Problem } from '../errors.js';

type Kind = 'string' | 'path' | 'paths' | 'mode' | 'positive' | 'count' | 'uids' | 'level' | 'writer';

interface Key {
  readonly kind: Kind;
  readonly default: unknown;
  readonly meaning: string;
  /** Applied on SIGHUP without a restart. */
  readonly reload: boolean;
}

export const CONFIG_TABLE = {
  socket: { kind: 'path', default: '/run/configdrived/configdrived.sock', meaning: 'Unix socket to listen on when not socket-activated', reload: false },
  socketMode: { kind: 'mode', default: '0660', meaning: 'permissions of that socket', reload: false },
  socketGroup: { kind: 'string', default: '', meaning: 'group owning that socket (empty: root)', reload: false },
  uri: { kind: 'string', default: 'qemu:///system', meaning: 'libvirt connection URI; qemu:///embed?root=DIR runs QEMU without libvirtd', reload: false },
  stateDir: { kind: 'path', default: '/var/lib/configdrived', meaning: 'payload images and per-domain records', reload: false },
  isoWriter: { kind: 'writer', default: 'builtin', meaning: 'builtin (in-process) or genisoimage', reload: true },
  buildThreads: { kind: 'count', default: 2, meaning: 'threads that parse and build drives (0: on the event loop); each starts when work arrives', reload: false },
  buildThreadIdleMs: { kind: 'positive', default: 60000, meaning: 'a build thread without work for this long is stopped, giving its memory back', reload: false },
  isoGroup: { kind: 'string', default: '', meaning: "group given to images so QEMU can read them (empty: QEMU's own group, from libvirt's DAC label)", reload: false },
  maxFrameBytes: { kind: 'positive', default: 4194304, meaning: 'longest request line accepted', reload: true },
  idleTimeoutMs: { kind: 'positive', default: 60000, meaning: 'a connection without a complete request for this long is closed', reload: true },
  maxConnections: { kind: 'positive', default: 1024, meaning: 'connections served at once; more are refused with BUSY', reload: true },
  maxInFlight: { kind: 'positive', default: 64, meaning: 'requests executing at once; more fail with BUSY', reload: true },
  drainTimeoutMs: { kind: 'positive', default: 30000, meaning: 'on SIGTERM, how long requests in flight may finish', reload: true },
  allowedUids: { kind: 'uids', default: [], meaning: 'uids allowed besides root (empty: whoever can open the socket)', reload: true },
  allowedGids: { kind: 'uids', default: [], meaning: 'gids allowed besides root', reload: true },
  logLevel: { kind: 'level', default: 'info', meaning: 'error, warning, info or debug', reload: true },
  sweepIntervalMs: { kind: 'positive', default: 30000, meaning: "how often drives of domains undefined behind the agent's back are removed, and changes a crash left half done that libvirt refused to resolve are tried again", reload: false },
  migrationTimeoutMs: {
    kind: 'positive',
    default: 600000,
    meaning: "a migration begun here (Payload.migrationBegin) or prepared for here (Payload.migrationPrepare) that libvirt shows no sign of after this long is given up: the source keeps its drive, the destination drops the copy it was handed",
    reload: false,
  },
  imageDirs: { kind: 'paths', default: [], meaning: "directories pre-built drives may be taken from (the `image` source), besides the store's own builds", reload: true },
} as const satisfies Record<string, Key>;

export type ConfigKey = keyof typeof CONFIG_TABLE;

export interface Config {
  socket: string;
  socketMode: number;
  socketGroup: string;
  uri: string;
  stateDir: string;
  isoWriter: 'builtin' | 'genisoimage';
  isoGroup: string;
  buildThreads: number;
  buildThreadIdleMs: number;
  maxFrameBytes: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxInFlight: number;
  drainTimeoutMs: number;
  migrationTimeoutMs: number;
  allowedUids: number[];
  allowedGids: number[];
  logLevel: 'error' | 'warning' | 'info' | 'debug';
  sweepIntervalMs: number;
  imageDirs: string[];
}

export type Sources = Partial<Record<ConfigKey, string>>;

/** The keys SIGHUP applies: exactly those the table marks `reload: true`. */
export type ReloadableKey = { [K in ConfigKey]: (typeof CONFIG_TABLE)[K]['reload'] extends true ? K : never }[ConfigKey];

export const RELOADABLE_KEYS: readonly ReloadableKey[] = (Object.keys(CONFIG_TABLE) as ConfigKey[]).filter((k): k is ReloadableKey => CONFIG_TABLE[k].reload);

/**
 * How a running daemon takes each reloadable setting: one function per key, so marking a
 * key reloadable in the table does not compile until the daemon applies it.
 */
export type ReloadAppliers = { readonly [K in ReloadableKey]: (value: Config[K]) => void };

/** Hands every reloadable value of `config` to its applier. */
export function applyReloadable(config: Config, appliers: ReloadAppliers): void {
  const applyOne = <K extends ReloadableKey>(key: K) => appliers[key](config[key]);
  for (const key of RELOADABLE_KEYS) applyOne(key);
}

/** The settings that differ between the running and a newly read configuration but only take effect on a restart. */
export function needingRestart(running: Config, next: Config): ConfigKey[] {
  return (Object.keys(CONFIG_TABLE) as ConfigKey[]).filter((k) => !CONFIG_TABLE[k].reload && JSON.stringify(running[k]) !== JSON.stringify(next[k]));
}

function convert(kind: Kind, value: unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  switch (kind) {
    case 'string':
      return typeof value === 'string' ? { ok: true, value } : { ok: false, message: 'expected a string' };
    case 'path':
      return typeof value === 'string' && value.startsWith('/') ? { ok: true, value } : { ok: false, message: 'expected an absolute path' };
    case 'paths':
      return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.startsWith('/')) ? { ok: true, value } : { ok: false, message: 'expected a list of absolute paths' };
    case 'mode': {
      const text = typeof value === 'number' ? value.toString(8) : String(value);
      return /^0?[0-7]{3}$/.test(text) ? { ok: true, value: parseInt(text, 8) } : { ok: false, message: 'expected an octal mode such as "0660"' };
    }
    case 'positive':
      return Number.isSafeInteger(value) && (value as number) > 0 ? { ok: true, value } : { ok: false, message: 'expected a positive integer' };
    case 'count':
      return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= 64 ? { ok: true, value } : { ok: false, message: 'expected an integer from 0 to 64' };
    case 'uids':
      return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0) ? { ok: true, value } : { ok: false, message: 'expected a list of numeric ids' };
    case 'level':
      return ['error', 'warning', 'info', 'debug'].includes(value as string) ? { ok: true, value } : { ok: false, message: 'expected error, warning, info or debug' };
    case 'writer':
      return value === 'builtin' || value === 'genisoimage' ? { ok: true, value } : { ok: false, message: 'expected builtin or genisoimage' };
  }
}

export function defaults(): { config: Config; sources: Sources } {
  const config = {} as Record<string, unknown>;
  const sources: Sources = {};
  for (const [key, spec] of Object.entries(CONFIG_TABLE)) {
    config[key] = spec.kind === 'mode' ? parseInt(spec.default as string, 8) : spec.default;
    sources[key as ConfigKey] = 'default';
  }
  return { config: config as unknown as Config, sources };
}

/** Applies one layer (a file's mapping, or flags), collecting problems under `origin`. */
export function apply(config: Config, sources: Sources, layer: unknown, origin: string, problems: Problem[]): void {
  if (layer === null || layer === undefined) return;
  if (typeof layer !== 'object' || Array.isArray(layer)) {
    problems.push({ path: origin, message: 'must be a mapping of settings' });
    return;
  }
  for (const [key, value] of Object.entries(layer)) {
    if (!Object.hasOwn(CONFIG_TABLE, key)) {
      problems.push({ path: `${origin}: ${key}`, message: 'is not a known setting' });
      continue;
    }
    const result = convert(CONFIG_TABLE[key as ConfigKey].kind, value);
    if (!result.ok) problems.push({ path: `${origin}: ${key}`, message: result.message });
    else {
      (config as unknown as Record<string, unknown>)[key] = result.value;
      sources[key as ConfigKey] = origin;
    }
  }
}

async function readYaml(path: string, problems: Problem[]): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AgentError('CONFIG_INVALID', `cannot read ${path}: ${String((err as NodeJS.ErrnoException).code)}`);
  }
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    problems.push({ path, message: `is not valid YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` });
    return undefined;
  }
}

/** The main file (missing is fine), then FILE.d/*.yaml in lexical order, then `flags`. */
export async function loadConfig(file: string, flags: Record<string, unknown>): Promise<{ config: Config; sources: Sources }> {
  const { config, sources } = defaults();
  const problems: Problem[] = [];
  apply(config, sources, await readYaml(file, problems), file, problems);
  const dir = `${file}.d`;
  const dropins = await readdir(dir).catch(() => [] as string[]);
  for (const name of dropins.filter((n) => n.endsWith('.yaml')).sort()) apply(config, sources, await readYaml(join(dir, name), problems), join(dir, name), problems);
  apply(config, sources, flags, 'command line', problems);
  if (problems.length > 0) throw invalid('CONFIG_INVALID', 'The configuration is invalid', problems);
  return { config, sources };
}

/** `configdrived --print-config`: the effective values as YAML, each with where it came from. */
export function printConfig(config: Config, sources: Sources): string {
  return Object.keys(CONFIG_TABLE)
    .map((key) => {
      const value = (config as unknown as Record<string, unknown>)[key];
      const shown = CONFIG_TABLE[key as ConfigKey].kind === 'mode' ? `"0${(value as number).toString(8)}"` : JSON.stringify(value);
      return `${key}: ${shown}  # from ${sources[key as ConfigKey] ?? 'default'}`;
    })
    .join('\n') + '\n';
}

/** The table as Markdown, for docs/configuration.md (a test keeps the doc in sync). */
export function configTableMarkdown(): string {
  const rows = Object.entries(CONFIG_TABLE).map(([key, s]) => `| \`${key}\` | ${s.kind} | \`${JSON.stringify(s.default)}\` | ${s.meaning} | ${s.reload ? 'yes' : 'no'} |`);
  return ['| key | type | default | meaning | SIGHUP reloads |', '| --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}

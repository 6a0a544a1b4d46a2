#!/usr/bin/env node
/**
 * configdrived: the daemon. Ordered start (config, state, libvirt, recovery, socket,
 * readiness), ordered stop (stop accepting, drain, close libvirt). Exit status: 0 clean
 * stop, 1 runtime failure, 2 wrong command line, 78 invalid configuration (EX_CONFIG).
 */
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { applyReloadable, loadConfig, needingRestart, printConfig, type Config, type ReloadAppliers } from '../src/config/config.js';
import { AgentError, formatProblem, toAgentError } from '../src/errors.js';
import { prepareEmbedRoot } from '../src/libvirt/embed.js';
import { forkSafeDescriptors, isInProcessUri } from '../src/libvirt/fork-guard.js';
import { Hypervisor } from '../src/libvirt/hypervisor.js';
import { createLogger, type Logger } from '../src/log.js';
import { BuildPool, inlineBuilder, type DriveBuilder } from '../src/payload/build-pool.js';
import { RpcServer } from '../src/rpc/server.js';
import { recover } from '../src/vm/recover.js';

import { composeAgent } from './daemon/compose.js';
import { AGENT_VERSION, createHandler } from './daemon/handler.js';
import { openStore } from './daemon/store-setup.js';
import { groupId, notifySystemd } from './daemon/system.js';

const EXIT = { OK: 0, FAILED: 1, USAGE: 2, CONFIG: 78 } as const;
const DEFAULT_CONFIG = '/etc/configdrived/configdrived.yaml';

/**
 * A build thread's heap: small young generation (RSS under load), and an old-generation
 * cap far above what the largest accepted document needs, so a hostile one fails alone.
 */
const BUILD_THREAD_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 256 };

const HELP = `Usage: configdrived [--config FILE] [--socket PATH] [--uri URI] [--state-dir DIR]
                   [--log-level LEVEL] [--print-config] [--help] [--version]

The configdrive-agent daemon: builds cloud-init config drives and puts them in front of
libvirt domains, on request over a Unix socket (JSON-RPC 2.0, one object per line).

  --config FILE    YAML configuration (default ${DEFAULT_CONFIG}); drop-ins are read
                   from FILE.d/*.yaml in lexical order; a missing FILE is fine
  --socket PATH    socket to listen on (ignored when systemd passes one: LISTEN_FDS)
  --uri URI        libvirt URI: qemu:///system (default) or qemu:///embed?root=DIR
  --state-dir DIR  images and per-domain records (default /var/lib/configdrived)
  --log-level L    error, warning, info (default) or debug
  --print-config   print the effective configuration, each value with its source, and exit

Signals: SIGTERM/SIGINT drain requests in flight, then exit 0; SIGHUP reloads the
settings marked reloadable in docs/configuration.md.
Exit status: 0 stopped cleanly, 1 failed, 2 wrong command line, 78 invalid configuration.
`;

/**
 * In the re-executed daemon, one end of a socket pair whose other end only the process
 * that started it holds. It reaches no grandchild: Node marks it close-on-exec at start,
 * as it does 3 and 4, and libvirt closes every descriptor it does not pass to QEMU
 * (src/libvirt/fork-guard.ts); the daemon test checks both. Being a socket, not a pipe,
 * it cannot trip the fork guard, which looks for pipes on 3 and 4.
 */
const PARENT_WATCH_FD = 5;

/**
 * An embedded libvirt driver forks QEMU from this process, which needs descriptors 3
 * and 4 taken before Node starts (src/libvirt/fork-guard.ts): run again with them.
 */
async function relaunchWithGuard(): Promise<number> {
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  // Imported here, not at the top: execa costs about 12 MB, and only this path needs it.
  const { execa } = await import('execa');
  const child = execa(process.execPath, args, {
    stdio: ['inherit', 'inherit', 'inherit', { file: '/dev/null' }, { file: '/dev/null' }, 'pipe'],
    reject: false,
    env: { CONFIGDRIVED_RELAUNCHED: '1' },
  });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  // Under `npx configdrived`, npm's shell dies on SIGTERM without passing it on and leaves
  // this process orphaned: when npm's process is gone, the daemon stops as on SIGTERM.
  // Only then: a daemon started with `nohup ... &` must outlive its shell.
  if (process.env['npm_command'] === 'exec') {
    const launcher = process.ppid;
    setInterval(() => process.ppid !== launcher && child.kill('SIGTERM'), 1000).unref();
  }
  const result = await child;
  return typeof result.exitCode === 'number' ? result.exitCode : EXIT.FAILED;
}

/**
 * The re-executed daemon stops as on SIGTERM once the process that started it is gone,
 * however it went, SIGKILL included (nothing passed a signal on): the kernel closes that
 * process's end of the pair, and this end reads EOF.
 */
function stopWithParent(log: Logger): void {
  const watch = new Socket({ fd: PARENT_WATCH_FD, readable: true, writable: false });
  // Nothing is ever sent: reading only notices the end. The daemon's life is not tied to it.
  watch.unref();
  watch.resume();
  watch.once('close', () => {
    log.warning('the process that started this one is gone; stopping as on SIGTERM');
    process.kill(process.pid, 'SIGTERM');
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', default: DEFAULT_CONFIG },
        socket: { type: 'string' },
        uri: { type: 'string' },
        'state-dir': { type: 'string' },
        'log-level': { type: 'string' },
        'print-config': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`configdrived: ${err instanceof Error ? err.message : String(err)}; see configdrived --help\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (values.version) {
    process.stdout.write(`configdrived ${AGENT_VERSION}\n`);
    return EXIT.OK;
  }
  const flags: Record<string, unknown> = {};
  if (values.socket !== undefined) flags['socket'] = values.socket;
  if (values.uri !== undefined) flags['uri'] = values.uri;
  if (values['state-dir'] !== undefined) flags['stateDir'] = values['state-dir'];
  if (values['log-level'] !== undefined) flags['logLevel'] = values['log-level'];
  let loaded;
  try {
    loaded = await loadConfig(values.config, flags);
  } catch (err) {
    const e = toAgentError(err);
    process.stderr.write(`configdrived: ${e.message}\n`);
    for (const p of e.problems.slice(1)) process.stderr.write(`  ${formatProblem(p)}\n`);
    return EXIT.CONFIG;
  }
  if (values['print-config']) {
    process.stdout.write(printConfig(loaded.config, loaded.sources));
    return EXIT.OK;
  }
  if (isInProcessUri(loaded.config.uri) && !forkSafeDescriptors() && process.env['CONFIGDRIVED_RELAUNCHED'] === undefined) return relaunchWithGuard();
  return run(loaded.config, values.config, flags);
}

/** `flags` are the settings given on the command line: every reload applies them again over the files, as at start. */
async function run(config: Config, configFile: string, flags: Readonly<Record<string, unknown>>): Promise<number> {
  const log = createLogger({ level: config.logLevel });
  let hv: Hypervisor | undefined;
  let builder: DriveBuilder = inlineBuilder;
  try {
    const started = performance.now();
    const embedRoot = /^qemu:\/\/\/embed\?root=(.+)$/.exec(config.uri)?.[1];
    if (embedRoot !== undefined) await prepareEmbedRoot(decodeURI(embedRoot));
    hv = await Hypervisor.open(config.uri);
    const { store, qemu } = await openStore(hv, config);
    log.info('images readable by QEMU', qemu === undefined ? { qemu: 'no DAC label: runs as libvirt' } : { qemu: qemu.userName, uid: qemu.uid, gid: qemu.gid, stateDir: config.stateDir });
    const report = await recover(hv, store, { migrationTimeoutMs: config.migrationTimeoutMs });
    log.info('recovered state', { tempFiles: report.tempFiles.length, finished: report.finished.length, rolledBack: report.rolledBack.length, vanished: report.vanished.length, orphanImages: report.orphanImages.length, unresolved: report.failed.length });
    for (const f of report.failed) log.warning('a change left half done on this domain cannot be resolved now; its record and images are kept and it is retried', { domain: f.name, uuid: f.uuid, error: f.error });
    const holder: { server?: RpcServer } = {};
    builder = config.buildThreads === 0 ? inlineBuilder : new BuildPool({ threads: config.buildThreads, idleMs: config.buildThreadIdleMs, resourceLimits: BUILD_THREAD_LIMITS });
    let writer = config.isoWriter;
    const { service, watcher, migrations } = composeAgent({
      hv,
      store,
      builder,
      writer,
      migrationTimeoutMs: config.migrationTimeoutMs,
      notify: (method, params) => holder.server?.notify(method, params),
      log,
    });
    // Running domains' channels, read again after a restart: a guest that reported while
    // the daemon was down is still blocked on its write and completes it now.
    await watcher.sync().catch((err: unknown) => log.warning('cannot reconnect to VM.initialized channels', { error: toAgentError(err).message }));
    let imageDirs = config.imageDirs;
    const server = new RpcServer(createHandler(service, migrations, hv, log, () => writer, () => [store.buildsDir, ...imageDirs]), config, log);
    holder.server = server;
    const activated = process.env['LISTEN_PID'] === String(process.pid) && process.env['LISTEN_FDS'] === '1';
    await server.listen(activated ? { fd: 3 } : { path: config.socket, mode: config.socketMode, ...(config.socketGroup === '' ? {} : { gid: await groupId(config.socketGroup) }) });
    const sweeper = setInterval(() => {
      service.sweepVanished().then(
        (gone) => gone.length > 0 && log.info('removed drives of undefined domains', { domains: gone.join(',') }),
        (err: unknown) => log.warning('sweep of undefined domains failed', { error: toAgentError(err).message }),
      );
      service.endFinishedRuns().then(
        (ended) => ended.length > 0 && log.info('removed drives whose run ended (Run Once, or an eject QEMU refused)', { domains: ended.join(',') }),
        (err: unknown) => log.warning('sweep of ended runs failed', { error: toAgentError(err).message }),
      );
      watcher.sync().catch((err: unknown) => log.warning('sweep of VM.initialized channels failed', { error: toAgentError(err).message }));
      service.settlePending().then(
        ({ settled }) => settled.length > 0 && log.info('resolved changes left half done', { domains: settled.join(',') }),
        (err: unknown) => log.warning('retry of changes left half done failed', { error: toAgentError(err).message }),
      );
    }, config.sweepIntervalMs);
    sweeper.unref();
    await notifySystemd('READY=1');
    log.info('ready', { socket: activated ? 'systemd (fd 3)' : config.socket, uri: config.uri, stateDir: config.stateDir, ms: (performance.now() - started).toFixed(0), version: AGENT_VERSION });

    // `on`, not `once`: a second SIGTERM during the drain must not kill us half-way.
    const stopped = new Promise<string>((resolve) => {
      process.on('SIGTERM', () => resolve('SIGTERM'));
      process.on('SIGINT', () => resolve('SIGINT'));
    });
    if (process.env['CONFIGDRIVED_RELAUNCHED'] !== undefined) stopWithParent(log);
    let drainTimeoutMs = config.drainTimeoutMs;
    // Where every setting the table marks reloadable reaches the running daemon.
    const appliers: ReloadAppliers = {
      isoWriter: (name) => {
        writer = name;
        service.useWriter(name);
      },
      maxFrameBytes: (bytes) => (server.limits.maxFrameBytes = bytes),
      idleTimeoutMs: (ms) => (server.limits.idleTimeoutMs = ms),
      maxConnections: (n) => (server.limits.maxConnections = n),
      maxInFlight: (n) => (server.limits.maxInFlight = n),
      drainTimeoutMs: (ms) => (drainTimeoutMs = ms),
      allowedUids: (ids) => (server.limits.allowedUids = ids),
      allowedGids: (ids) => (server.limits.allowedGids = ids),
      logLevel: (level) => (log.level = level),
      imageDirs: (dirs) => (imageDirs = dirs),
    };
    process.on('SIGHUP', () => {
      void loadConfig(configFile, flags)
        .then(({ config: next }) => {
          applyReloadable(next, appliers);
          const pending = needingRestart(config, next);
          if (pending.length > 0) log.warning('changed settings that only a restart applies keep their running values', { keys: pending.join(',') });
          log.info('configuration reloaded', { logLevel: next.logLevel });
        })
        .catch((err: unknown) => {
          const e = toAgentError(err);
          // Every problem, as at start: an operator fixes the file once, not once per SIGHUP.
          log.error('reload failed; keeping the running configuration', { error: e.message, ...(e.problems.length > 1 ? { problems: e.problems.map(formatProblem).join('; ') } : {}) });
        });
    });
    const signal = await stopped;
    log.info('stopping', { signal, drainMs: drainTimeoutMs });
    await notifySystemd('STOPPING=1');
    clearInterval(sweeper);
    await server.close(drainTimeoutMs);
    watcher.close();
    await builder.close();
    await hv.close();
    log.info('stopped');
    return EXIT.OK;
  } catch (err) {
    const e = toAgentError(err);
    log.error('cannot run', { code: e.code, error: e.message });
    await builder.close();
    await hv?.close().catch(() => undefined);
    return e instanceof AgentError && e.code === 'CONFIG_INVALID' ? EXIT.CONFIG : EXIT.FAILED;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Worker threads and the socket are closed by now; leave even if a library left a timer.
setTimeout(() => process.exit(), 100).unref();

/**
 * The daemon's composition: each Action to the service call that performs it, and the
 * results as the API returns them (never file contents, never secrets).
 */
import { readFileSync } from 'node:fs';
import { DRIVE_FORMATS } from '../../src/cloudinit/index.js';
import { AgentError } from '../../src/errors.js';
import { INITIALIZATION_LIMITS } from '../../src/initialization/index.js';
import { ISO_LIMITS, WRITER_NAMES } from '../../src/iso/index.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import type { Logger } from '../../src/log.js';
import { DEFAULT_LABEL } from '../../src/payload/build-drive.js';
import { loadPrebuiltDrive } from '../../src/payload/prebuilt.js';
import type { DriveSource } from '../../src/payload/drive-source.js';
import type { Action } from '../../src/rpc/actions.js';
import type { Perform } from '../../src/rpc/server.js';
import type { AttachedPayload } from '../../src/payload/store.js';
import type { Emigration } from '../../src/vm/emigrate.js';
import type { Immigration } from '../../src/vm/immigrate.js';
import type { AttachResult, DriveInput, VmService } from '../../src/vm/service.js';

/** The two sides of a migration this host can be (src/vm/emigrate.ts, immigrate.ts). */
export interface Migrations {
  readonly emigration: Emigration;
  readonly immigration: Immigration;
}

/** A record's drive as replies show it: the VM.initialized nonce is the guest's secret. */
function shown(payload: AttachedPayload | undefined | null): Omit<AttachedPayload, 'nonce'> | null {
  if (payload === undefined || payload === null) return null;
  const { nonce: _secret, ...rest } = payload;
  return rest;
}

export const AGENT_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Where pre-built drives may come from; a getter because SIGHUP can change it. */
export type ImageDirs = () => readonly string[];

async function input(source: DriveSource, imageDirs: ImageDirs): Promise<DriveInput> {
  return source.kind === 'image' ? loadPrebuiltDrive(source.path, imageDirs(), DEFAULT_LABEL) : source;
}

/** Warnings go back to the caller and, at info, to the log: a setting not applied as written, or a drive the guest may ignore. */
function logged(log: Logger, warnings: readonly string[]): readonly string[] {
  for (const w of warnings) log.info('drive warning', { warning: w });
  return warnings;
}

function attachView(r: AttachResult) {
  return {
    domain: r.domain,
    changed: r.changed,
    device: { target: r.payload.target, bus: r.payload.bus },
    path: r.payload.path,
    sha256: r.payload.sha256,
    size: r.payload.size,
    label: r.payload.label,
    instanceId: r.instance.instanceId,
    generation: r.instance.generation,
    reason: r.instance.reason,
    persistent: r.payload.runOnce !== true,
    verified: r.verified,
    warnings: r.warnings,
    deferred: r.deferred,
  };
}

export function createHandler(service: VmService, migrations: Migrations, hv: Hypervisor, log: Logger, writer: () => string, imageDirs: ImageDirs): Perform {
  return async (action: Action) => {
    switch (action.method) {
      case 'Host.getCapabilities': {
        const versions = await hv.versions();
        return {
          agent: { name: 'configdrive-agent', version: AGENT_VERSION },
          libvirt: versions,
          isoWriters: WRITER_NAMES,
          isoWriter: writer(),
          formats: ['ovirt-xml', 'ovirt-json', 'sdk-v3-json', 'native-json', 'native-yaml', 'raw-files'],
          driveFormats: DRIVE_FORMATS,
          limits: { initialization: INITIALIZATION_LIMITS, iso: ISO_LIMITS },
        };
      }
      case 'Payload.build': {
        const b = await service.buildOnly(action.source, action.domain);
        return { path: b.path, size: b.size, sha256: b.sha256, label: b.label, instanceId: b.instanceId, files: b.files, warnings: logged(log, b.warnings) };
      }
      case 'Payload.attach': {
        const r = await service.attach(action.domain, await input(action.source, imageDirs), { reinitialize: action.reinitialize });
        logged(log, r.warnings);
        return attachView(r);
      }
      case 'VM.start': {
        const r = await service.start(action.domain, await input(action.source, imageDirs), { reinitialize: action.reinitialize, persistent: action.persistent });
        logged(log, r.warnings);
        return attachView(r);
      }
      case 'VM.create': {
        const r = await service.create(action.request);
        const p = r.payload;
        return {
          domain: r.domain,
          device: { target: p.target, bus: p.bus },
          path: p.path,
          sha256: p.sha256,
          size: p.size,
          label: p.label,
          instanceId: p.instanceId,
          generation: p.generation,
          paused: r.paused,
          verified: { liveSource: true, label: r.image.label, files: r.image.tree.size },
          warnings: logged(log, r.image.warnings),
        };
      }
      case 'Payload.detach': {
        const r = await service.detach(action.domain);
        return { ...r, removed: shown(r.removed) };
      }
      case 'Payload.get': {
        const r = await service.get(action.domain);
        const { nonce: _secret, ...lineage } = r.lineage ?? {};
        return { ...r, payload: shown(r.payload), lineage: r.lineage === null ? null : lineage };
      }
      case 'Payload.list':
        return (await service.list()).map((r) => ({ domain: { uuid: r.uuid, name: r.name }, payload: shown(r.current), pending: r.pending !== undefined, ...(r.pending?.op === 'emigrate' || r.pending?.op === 'immigrate' ? { migration: r.pending.op } : {}) }));
      case 'Payload.migrationBegin':
        return migrations.emigration.begin(action.domain);
      case 'Payload.migrationPrepare':
        return migrations.immigration.prepare(action.ticket);
      case 'VM.migrate':
        return migrations.emigration.migrate(action.domain, action.options);
      case 'Payload.migrationFinish':
        return migrations.immigration.finish(action.domain, action.initialization);
      case 'Payload.migrationSettle':
        return migrations.emigration.settle(action.domain);
      default: {
        const never: never = action;
        throw new AgentError('METHOD_NOT_FOUND', `unhandled ${String(never)}`);
      }
    }
  };
}

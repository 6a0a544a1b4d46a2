/**
 * The daemon's composition: each Action to the service call that performs it, and the
 * results as the API returns them (never file contents, never secrets).
 */
import { readFileSync } from 'node:fs';
import { AgentError } from '../../src/errors.js';
import { INITIALIZATION_LIMITS, parseInitialization, parseInitializationValue } from '../../src/initialization/index.js';
import { ISO_LIMITS, WRITER_NAMES } from '../../src/iso/index.js';
import type { Hypervisor } from '../../src/libvirt/hypervisor.js';
import type { Logger } from '../../src/log.js';
import { DEFAULT_LABEL } from '../../src/payload/build-drive.js';
import { loadPrebuiltDrive } from '../../src/payload/prebuilt.js';
import type { Action, Source } from '../../src/rpc/actions.js';
import type { Perform } from '../../src/rpc/server.js';
import type { AttachResult, DriveInput, VmService } from '../../src/vm/service.js';

export const AGENT_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Where pre-built drives may come from; a getter because SIGHUP can change it. */
export type ImageDirs = () => readonly string[];

async function input(source: Source, log: Logger, imageDirs: ImageDirs): Promise<{ drive: DriveInput; warnings: readonly string[] }> {
  if (source.kind === 'files') return { drive: { kind: 'raw-files', tree: source.files }, warnings: [] };
  if (source.kind === 'image') return { drive: await loadPrebuiltDrive(source.path, imageDirs(), DEFAULT_LABEL), warnings: [] };
  const parsed = typeof source.document === 'string' ? parseInitialization(source.document, source.format) : parseInitializationValue(source.document);
  for (const w of parsed.warnings) log.info('initialization warning', { warning: w });
  return { drive: parsed.initialization, warnings: parsed.warnings };
}

function attachView(r: AttachResult, warnings: readonly string[]) {
  return {
    domain: r.domain,
    changed: r.changed,
    device: { target: r.payload.target, bus: r.payload.bus },
    path: r.payload.path,
    sha256: r.payload.sha256,
    size: r.payload.size,
    label: r.payload.label,
    instanceId: r.payload.instanceId,
    verified: r.verified,
    warnings: [...warnings, ...r.warnings],
  };
}

export function createHandler(service: VmService, hv: Hypervisor, log: Logger, writer: string, imageDirs: ImageDirs): Perform {
  return async (action: Action) => {
    switch (action.method) {
      case 'Host.getCapabilities': {
        const versions = await hv.versions();
        return {
          agent: { name: 'configdrive-agent', version: AGENT_VERSION },
          libvirt: versions,
          isoWriters: WRITER_NAMES,
          isoWriter: writer,
          formats: ['ovirt-xml', 'ovirt-json', 'sdk-v3-json', 'native-json', 'native-yaml', 'raw-files'],
          limits: { initialization: INITIALIZATION_LIMITS, iso: ISO_LIMITS },
        };
      }
      case 'Payload.build': {
        const { drive, warnings } = await input(action.source, log, imageDirs);
        const { path, image } = await service.buildOnly(drive, action.domain);
        return { path, size: image.bytes.length, sha256: image.sha256, label: image.label, instanceId: image.instanceId, files: [...image.tree].map(([p, b]) => ({ path: p, size: b.length })), warnings: [...warnings, ...image.warnings] };
      }
      case 'Payload.attach': {
        const { drive, warnings } = await input(action.source, log, imageDirs);
        return attachView(await service.attach(action.domain, drive), warnings);
      }
      case 'VM.start': {
        const { drive, warnings } = await input(action.source, log, imageDirs);
        return attachView(await service.start(action.domain, drive), warnings);
      }
      case 'Payload.detach':
        return service.detach(action.domain);
      case 'Payload.get':
        return service.get(action.domain);
      case 'Payload.list':
        return (await service.list()).map((r) => ({ domain: { uuid: r.uuid, name: r.name }, payload: r.current ?? null, pending: r.pending !== undefined }));
      default: {
        const never: never = action;
        throw new AgentError('METHOD_NOT_FOUND', `unhandled ${String(never)}`);
      }
    }
  };
}

/**
 * An in-memory stand-in for libvirt, for unit tests of src/vm's error paths (failures
 * injected at any step, crashes between steps). The real paths are tested against
 * qemu:///embed in test/integration; each behaviour here names the libvirt behaviour
 * it stands for.
 */
import { AgentError } from '../../src/errors.js';
import { describeDomain, type DiskInfo } from '../../src/vm/domain-xml.js';
import type { AffectFlags, DomainControl, DomainRef, DomainState, JobProgress, StateDetail } from '../../src/vm/ports.js';

interface Side {
  disks: DiskInfo[];
  metadata: Map<string, string>;
  /** Channel elements as given (the VM.initialized channel). */
  channels?: string[];
}

interface FakeDomain {
  ref: DomainRef;
  machine: string;
  macs: string[];
  controllers: { type: string; model?: string }[];
  state: DomainState;
  /** libvirt's reason for the state (virsh domstate --reason), as the port names it. */
  reason: string;
  /** A managed save image (virsh managedsave) the next start restores. */
  managedSave: boolean;
  config: Side;
  live: Side | null;
}

export type Method = keyof DomainControl;

function clone(side: Side): Side {
  return { disks: side.disks.map((d) => ({ ...d })), metadata: new Map(side.metadata), channels: [...(side.channels ?? [])] };
}

function xmlOf(d: FakeDomain, side: Side): string {
  const disks = side.disks
    .map((disk) => `<disk type='file' device='${disk.device}'>${disk.source === undefined ? '' : `<source file='${disk.source}'/>`}<target dev='${disk.target}' bus='${disk.bus}'/></disk>`)
    .join('');
  const nics = d.macs.map((m) => `<interface type='user'><mac address='${m}'/></interface>`).join('');
  const controllers = d.controllers.map((c) => `<controller type='${c.type}'${c.model === undefined ? '' : ` model='${c.model}'`}/>`).join('');
  // libvirt shows metadata elements in the domain XML under their namespace prefix.
  const metadata = [...side.metadata].map(([uri, xml]) => xml.replace(/^<(\w+)/, `<cd:$1 xmlns:cd="${uri}"`)).join('');
  return `<domain type='qemu'><name>${d.ref.name}</name><uuid>${d.ref.uuid}</uuid><metadata>${metadata}</metadata><os><type machine='${d.machine}'>hvm</type></os><devices>${disks}${controllers}${nics}${(side.channels ?? []).join('')}</devices></domain>`;
}

const channelName = (xml: string) => /<target type='virtio' name='([^']+)'/.exec(xml)?.[1];

function parseDisk(xml: string): DiskInfo {
  const disk = describeDomain(`<domain><name>x</name><uuid>x</uuid><devices>${xml}</devices></domain>`).disks[0];
  if (disk === undefined) throw new AgentError('LIBVIRT_ERROR', 'XML error: no device', { details: { libvirtCode: 27 } });
  return disk;
}

export class FakeDomains implements DomainControl {
  readonly domains = new Map<string, FakeDomain>();
  /** Calls in order, e.g. `attachDevice config`, for asserting what the flow did. */
  readonly calls: string[] = [];
  /** Throw this error when the method is called (once). */
  readonly failures = new Map<Method, AgentError>();

  define(ref: DomainRef, options: { machine?: string; macs?: string[]; disks?: DiskInfo[]; controllers?: { type: string; model?: string }[] } = {}): void {
    this.domains.set(ref.uuid, {
      ref,
      machine: options.machine ?? 'pc-q35-7.2',
      macs: options.macs ?? [],
      controllers: options.controllers ?? [],
      state: 'shutoff',
      reason: 'unknown',
      managedSave: false,
      config: { disks: options.disks ?? [], metadata: new Map() },
      live: null,
    });
  }

  /** virDomainDefineXML of a new domain; an existing UUID or name is VIR_ERR_OPERATION_FAILED (9) here. */
  async defineXml(xml: string): Promise<DomainRef> {
    this.enter('defineXml');
    const desc = describeDomain(xml);
    for (const d of this.domains.values()) {
      if (d.ref.uuid === desc.uuid || d.ref.name === desc.name) throw new AgentError('LIBVIRT_ERROR', `operation failed: domain '${desc.name}' already exists`, { details: { libvirtCode: 9 } });
    }
    const ref = { uuid: desc.uuid, name: desc.name };
    this.define(ref, { machine: desc.machine, macs: [...desc.macs], disks: desc.disks.map((d) => ({ ...d })), controllers: desc.controllers.map((c) => ({ ...c })) });
    return ref;
  }

  /** virDomainUndefine; a running domain would become transient, which no flow here wants. */
  async undefine(ref: DomainRef): Promise<void> {
    this.enter('undefine');
    const d = this.get(ref);
    if (d.state !== 'shutoff') throw new AgentError('LIBVIRT_ERROR', 'test stand-in: undefine of a running domain', { details: { libvirtCode: 55 } });
    this.domains.delete(ref.uuid);
  }

  domain(uuid: string): FakeDomain {
    const d = this.domains.get(uuid);
    if (d === undefined) throw new Error(`test bug: no fake domain ${uuid}`);
    return d;
  }

  private enter(method: Method, detail = ''): void {
    this.calls.push(detail === '' ? method : `${method} ${detail}`);
    const failure = this.failures.get(method);
    if (failure !== undefined) {
      this.failures.delete(method);
      throw failure;
    }
  }

  private get(ref: DomainRef): FakeDomain {
    const d = this.domains.get(ref.uuid);
    // virDomainLookupByUUIDString on an undefined domain: VIR_ERR_NO_DOMAIN (42).
    if (d === undefined) throw new AgentError('DOMAIN_NOT_FOUND', `Domain not found: ${ref.uuid}`, { details: { libvirtCode: 42 } });
    return d;
  }

  /** VIR_DOMAIN_AFFECT_LIVE on a shut-off domain: VIR_ERR_OPERATION_INVALID (55). */
  private sides(d: FakeDomain, flags: AffectFlags): Side[] {
    const sides: Side[] = [];
    if (flags.live === true) {
      if (d.live === null) throw new AgentError('LIBVIRT_ERROR', 'Requested operation is not valid: domain is not running', { details: { libvirtCode: 55 } });
      sides.push(d.live);
    }
    if (flags.config === true) sides.push(d.config);
    return sides;
  }

  lookup(nameOrUuid: string): Promise<DomainRef> {
    this.enter('lookup', nameOrUuid);
    for (const d of this.domains.values()) if (d.ref.uuid === nameOrUuid || d.ref.name === nameOrUuid) return Promise.resolve(d.ref);
    return Promise.reject(new AgentError('DOMAIN_NOT_FOUND', `Domain not found: no domain with matching name or uuid '${nameOrUuid}'`, { details: { libvirtCode: 42 } }));
  }

  listDomains(): Promise<DomainRef[]> {
    this.enter('listDomains');
    return Promise.resolve([...this.domains.values()].map((d) => d.ref));
  }

  async getXml(ref: DomainRef, options: { inactive: boolean }): Promise<string> {
    this.enter('getXml', options.inactive ? 'inactive' : 'live');
    const d = this.get(ref);
    return xmlOf(d, options.inactive || d.live === null ? d.config : d.live);
  }

  async state(ref: DomainRef): Promise<DomainState> {
    this.enter('state');
    return this.get(ref).state;
  }

  async stateDetail(ref: DomainRef): Promise<StateDetail> {
    this.enter('stateDetail');
    const d = this.get(ref);
    return { state: d.state, reason: d.reason };
  }

  async hasManagedSave(ref: DomainRef): Promise<boolean> {
    this.enter('hasManagedSave');
    return this.get(ref).managedSave;
  }

  /** No jobs: migrations are tested between two real libvirt daemons. */
  async jobProgress(ref: DomainRef): Promise<JobProgress> {
    this.enter('jobProgress');
    this.get(ref);
    return { active: false, elapsedMs: 0, dataTotal: 0, dataProcessed: 0, dataRemaining: 0 };
  }

  /** No snapshots: the real ones are tested on qemu:///embed. */
  async snapshotXmls(ref: DomainRef): Promise<{ name: string; xml: string }[]> {
    this.enter('snapshotXmls');
    this.get(ref);
    return [];
  }

  async start(ref: DomainRef, options: { paused: boolean }): Promise<void> {
    this.enter('start', options.paused ? 'paused' : '');
    const d = this.get(ref);
    if (d.state !== 'shutoff') throw new AgentError('LIBVIRT_ERROR', 'Requested operation is not valid: domain is already running', { details: { libvirtCode: 55 } });
    // A started domain runs its persistent definition.
    d.live = clone(d.config);
    d.state = options.paused ? 'paused' : 'running';
    d.reason = options.paused ? 'user' : 'booted';
  }

  async resume(ref: DomainRef): Promise<void> {
    this.enter('resume');
    const d = this.get(ref);
    d.state = 'running';
    d.reason = 'unpaused';
  }

  async destroy(ref: DomainRef): Promise<void> {
    this.enter('destroy');
    const d = this.get(ref);
    d.live = null;
    d.state = 'shutoff';
    d.reason = 'destroyed';
  }

  async attachDevice(ref: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    this.enter('attachDevice', flagNames(flags));
    const d = this.get(ref);
    if (xml.startsWith('<channel')) {
      for (const side of this.sides(d, flags)) (side.channels ??= []).push(xml);
      return;
    }
    const disk = parseDisk(xml);
    // QEMU cannot hot-plug IDE or SATA devices: VIR_ERR_OPERATION_UNSUPPORTED (84).
    if (flags.live === true && disk.bus !== 'scsi') throw new AgentError('LIBVIRT_ERROR', `Operation not supported: disk bus '${disk.bus}' cannot be hotplugged.`, { details: { libvirtCode: 84 } });
    for (const side of this.sides(d, flags)) {
      if (side.disks.some((x) => x.target === disk.target)) throw new AgentError('LIBVIRT_ERROR', `Requested operation is not valid: target ${disk.target} already exists`, { details: { libvirtCode: 55 } });
      side.disks.push(disk);
    }
  }

  async updateDevice(ref: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    this.enter('updateDevice', flagNames(flags));
    const d = this.get(ref);
    const disk = parseDisk(xml);
    for (const side of this.sides(d, flags)) {
      const i = side.disks.findIndex((x) => x.target === disk.target);
      if (i < 0) throw new AgentError('LIBVIRT_ERROR', `Operation failed: target ${disk.target} doesn't exist.`, { details: { libvirtCode: 9 } });
      side.disks[i] = disk;
    }
  }

  async detachDevice(ref: DomainRef, xml: string, flags: AffectFlags): Promise<void> {
    this.enter('detachDevice', flagNames(flags));
    const d = this.get(ref);
    if (xml.startsWith('<channel')) {
      for (const side of this.sides(d, flags)) side.channels = (side.channels ?? []).filter((c) => channelName(c) !== channelName(xml));
      return;
    }
    const disk = parseDisk(xml);
    for (const side of this.sides(d, flags)) {
      const i = side.disks.findIndex((x) => x.target === disk.target);
      if (i < 0) throw new AgentError('LIBVIRT_ERROR', `Operation failed: disk ${disk.target} not found`, { details: { libvirtCode: 9 } });
      side.disks.splice(i, 1);
    }
  }

  async getMetadata(ref: DomainRef, uri: string, flags: AffectFlags): Promise<string | null> {
    this.enter('getMetadata', flagNames(flags));
    const [side] = this.sides(this.get(ref), flags);
    const xml = side?.metadata.get(uri);
    // libvirt answers VIR_ERR_NO_DOMAIN_METADATA (80); the binding turns it into null.
    return xml === undefined ? null : xml.replace(/^<(\w+)/, `<$1 xmlns="${uri}"`);
  }

  async setMetadata(ref: DomainRef, xml: string | null, _key: string, uri: string, flags: AffectFlags): Promise<void> {
    this.enter('setMetadata', flagNames(flags));
    for (const side of this.sides(this.get(ref), flags)) {
      if (xml === null) side.metadata.delete(uri);
      else side.metadata.set(uri, xml);
    }
  }
}

function flagNames(flags: AffectFlags): string {
  return [flags.live === true ? 'live' : '', flags.config === true ? 'config' : ''].filter((s) => s !== '').join('+');
}

/**
 * What the flows need from libvirt, by name. src/libvirt's Hypervisor provides it over
 * the C library; unit tests of error paths may provide a fake with real libvirt codes.
 * Keeping the list here, small, is what lets src/vm be read without knowing koffi.
 */
export type DomainState = 'running' | 'paused' | 'shutoff' | 'blocked' | 'shutdown' | 'crashed' | 'pmsuspended' | 'nostate';

/**
 * Why a domain is in its state, as libvirt's virDomain*Reason enums name it (lower case,
 * libvirt's own words). What matters to the agent: a shut-off domain `saved` to a file
 * or `migrated` away did not end its guest, and a running one `restored`, `migrated` or
 * `from_snapshot` did not boot again.
 */
export type StateReason = string;

export interface StateDetail {
  readonly state: DomainState;
  readonly reason: StateReason;
}

export interface DomainRef {
  readonly uuid: string;
  readonly name: string;
}

export interface AffectFlags {
  readonly live?: boolean;
  readonly config?: boolean;
}

export interface DomainControl {
  /** By name or UUID; throws AgentError DOMAIN_NOT_FOUND. */
  lookup(nameOrUuid: string): Promise<DomainRef>;
  getXml(dom: DomainRef, options: { inactive: boolean }): Promise<string>;
  state(dom: DomainRef): Promise<DomainState>;
  stateDetail(dom: DomainRef): Promise<StateDetail>;
  /** Whether libvirt keeps a managed save image (virsh managedsave, libvirt-guests) the next start restores. */
  hasManagedSave(dom: DomainRef): Promise<boolean>;
  /** The domain's job (a migration, a save) and its progress; `active` false when none runs. */
  jobProgress(dom: DomainRef): Promise<JobProgress>;
  /** Every snapshot's name and XML (which holds the domain definition it reverts to). */
  snapshotXmls(dom: DomainRef): Promise<readonly { readonly name: string; readonly xml: string }[]>;
  start(dom: DomainRef, options: { paused: boolean }): Promise<void>;
  resume(dom: DomainRef): Promise<void>;
  destroy(dom: DomainRef): Promise<void>;
  attachDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void>;
  /** Live, a CD-ROM's tray is forced open: a locked tray never stops a media change. */
  updateDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void>;
  detachDevice(dom: DomainRef, xml: string, flags: AffectFlags): Promise<void>;
  /** Our element under `uri`, or null when there is none. */
  getMetadata(dom: DomainRef, uri: string, flags: AffectFlags): Promise<string | null>;
  /** `xml` null removes the element. */
  setMetadata(dom: DomainRef, xml: string | null, key: string, uri: string, flags: AffectFlags): Promise<void>;
  listDomains(): Promise<DomainRef[]>;
  /** A persistent definition from a whole domain XML (VM.create only: src/vm/create.ts). */
  defineXml(xml: string): Promise<DomainRef>;
  /** Removes the persistent definition of a shut-off domain (VM.create's rollback). */
  undefine(dom: DomainRef): Promise<void>;
}

/** A migration job's progress as libvirt counts it (virDomainJobInfo); `active` false once none runs. */
export interface JobProgress {
  readonly active: boolean;
  readonly elapsedMs: number;
  readonly dataTotal: number;
  readonly dataProcessed: number;
  readonly dataRemaining: number;
}

export interface MigrateRequest {
  /** libvirt URI of the destination host, which the source libvirt connects to (peer to peer). */
  readonly destUri: string;
  readonly mode: 'live' | 'offline';
  /** Where QEMU sends the guest's state (e.g. tcp://HOST:PORT); libvirt picks one otherwise. */
  readonly migrateUri?: string;
  /** The domain XML the destination runs (a live migration), and the one it defines. */
  readonly destXml?: string;
  readonly persistXml?: string;
  /** The guest stays paused on the destination until the destination agent resumes it. */
  readonly paused: boolean;
  readonly undefineSource: boolean;
  readonly bandwidthMiB?: number;
}

/** libvirt's migration, for the source side (src/vm/emigrate.ts). */
export interface MigrationControl {
  migrate(dom: DomainRef, request: MigrateRequest): Promise<void>;
  abortJob(dom: DomainRef): Promise<void>;
  /** The domain XML libvirt would send a destination: live, or the persistent definition. */
  migratableXml(dom: DomainRef, options: { inactive: boolean }): Promise<string>;
}

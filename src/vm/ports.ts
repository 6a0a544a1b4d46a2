/**
 * What the flows need from libvirt, by name. src/libvirt's Hypervisor provides it over
 * the C library; unit tests of error paths may provide a fake with real libvirt codes.
 * Keeping the list here, small, is what lets src/vm be read without knowing koffi.
 */
export type DomainState = 'running' | 'paused' | 'shutoff' | 'blocked' | 'shutdown' | 'crashed' | 'pmsuspended' | 'nostate';

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

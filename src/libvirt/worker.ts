/**
 * A libvirt worker thread. libvirt keeps its last error per thread, so a call and the
 * read of its error must happen on the same thread: koffi's own async calls run the
 * call on libuv's pool and lose the error. Each worker therefore makes its calls
 * synchronously, reads virGetLastError right after a failure, and answers the main
 * thread with a value or {code, domain, message}.
 *
 * Two roles:
 *  - "events": registers libvirt's default event loop (the embedded QEMU driver talks
 *    to QEMU's monitor through it) once, and runs it whenever told to (one such thread
 *    per process: see eventLoopThread in hypervisor.ts);
 *  - "calls": holds one connection and serves requests. Domains are named by UUID in
 *    every request; a virDomainPtr lives only for the request that looked it up.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { c, decodeDomainArray, decodeError, decodeSnapshotArray, freeArray, registerTimeoutCallback, silenceConnectionErrors, type ConnPtr, type DomPtr } from './ffi.js';
import type { Request, Response, WireError } from './protocol.js';

/** virDomainMigrateToURI3's typed parameters, by what they mean. */
export interface MigrateParams {
  readonly migrateUri?: string;
  readonly destXml?: string;
  readonly persistXml?: string;
  readonly bandwidthMiB?: number;
}

interface Data {
  readonly role: 'events' | 'calls';
  readonly uri?: string;
  /** Int32Array over a SharedArrayBuffer; [0] = 1 while the event loop should run. */
  readonly run?: SharedArrayBuffer;
}

const data = workerData as Data;
const port = parentPort!;

class CallFailed extends Error {
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
}

/** The error libvirt recorded on this thread for the call that just failed. */
function lastError(what: string): CallFailed {
  const err = decodeError(c.virGetLastError());
  c.virResetLastError();
  return new CallFailed(err ?? { code: -1, domain: 0, message: `${what} failed without a libvirt error` });
}

function check(result: number, what: string): number {
  if (result < 0) throw lastError(what);
  return result;
}

function serveEventLoop(): void {
  check(c.virEventRegisterDefaultImpl() as number, 'virEventRegisterDefaultImpl');
  const run = new Int32Array(data.run!);
  // A periodic timeout makes virEventRunDefaultImpl return now and then, so the run flag
  // is seen. The callback runs on this thread, inside virEventRunDefaultImpl: koffi allows that.
  const tick = registerTimeoutCallback(() => undefined);
  check(c.virEventAddTimeout(200, tick, null, null) as number, 'virEventAddTimeout');
  port.on('message', () => {
    while (Atomics.load(run, 0) === 1) c.virEventRunDefaultImpl();
    port.postMessage({ paused: true });
  });
  port.postMessage({ ready: true });
}

let conn: ConnPtr | null = null;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function connection(): ConnPtr {
  if (conn === null) {
    conn = c.virConnectOpen(data.uri!) as ConnPtr | null;
    if (conn === null) throw lastError(`virConnectOpen(${data.uri!})`);
    silenceConnectionErrors(conn);
  }
  return conn;
}

function refOf(dom: DomPtr): { uuid: string; name: string } {
  const buf = Buffer.alloc(37);
  check(c.virDomainGetUUIDString(dom, buf) as number, 'virDomainGetUUIDString');
  // virDomainGetName's string belongs to the domain object: copied, not freed.
  return { uuid: buf.toString('latin1', 0, 36), name: c.virDomainGetName(dom) as string };
}

/** Looks a domain up, runs `fn`, and frees the reference whatever happens. */
function withDomain<T>(nameOrUuid: string, fn: (dom: DomPtr) => T): T {
  const dom = (UUID.test(nameOrUuid) ? c.virDomainLookupByUUIDString(connection(), nameOrUuid) : c.virDomainLookupByName(connection(), nameOrUuid)) as DomPtr | null;
  if (dom === null) throw lastError(`lookup of domain ${nameOrUuid}`);
  try {
    return fn(dom);
  } finally {
    c.virDomainFree(dom);
  }
}

const ops: Record<string, (...args: never[]) => unknown> = {
  open: () => {
    connection();
    return null;
  },
  versions: () => {
    const lib = [0];
    const hv = [0];
    check(c.virConnectGetLibVersion(connection(), lib) as number, 'virConnectGetLibVersion');
    check(c.virConnectGetVersion(connection(), hv) as number, 'virConnectGetVersion');
    return { library: lib[0], hypervisor: hv[0], uri: c.virConnectGetURI(connection()) as string };
  },
  capabilities: () => {
    const xml = c.virConnectGetCapabilities(connection()) as string | null;
    if (xml === null) throw lastError('virConnectGetCapabilities');
    return xml;
  },
  listDomains: () => {
    const out: [unknown] = [null];
    const n = check(c.virConnectListAllDomains(connection(), out, 0) as number, 'virConnectListAllDomains');
    const doms = decodeDomainArray(out[0], n);
    try {
      return doms.map(refOf);
    } finally {
      // Each element is a reference we own, and the array itself is ours to free.
      for (const d of doms) c.virDomainFree(d);
      freeArray(out[0]);
    }
  },
  lookup: (nameOrUuid: string) => {
    // A UUID-shaped string names the domain with that UUID, as virsh reads it; when
    // there is none it may still be a domain's name (names are free text).
    if (UUID.test(nameOrUuid)) {
      const byUuid = c.virDomainLookupByUUIDString(connection(), nameOrUuid) as DomPtr | null;
      if (byUuid !== null) {
        try {
          return refOf(byUuid);
        } finally {
          c.virDomainFree(byUuid);
        }
      }
      c.virResetLastError();
    }
    const byName = c.virDomainLookupByName(connection(), nameOrUuid) as DomPtr | null;
    if (byName === null) throw lastError(`lookup of domain ${nameOrUuid}`);
    try {
      return refOf(byName);
    } finally {
      c.virDomainFree(byName);
    }
  },
  getXml: (uuid: string, flags: number) => withDomain(uuid, (d) => {
    const xml = c.virDomainGetXMLDesc(d, flags) as string | null;
    if (xml === null) throw lastError('virDomainGetXMLDesc');
    return xml;
  }),
  define: (xml: string) => {
    const dom = c.virDomainDefineXML(connection(), xml) as DomPtr | null;
    if (dom === null) throw lastError('virDomainDefineXML');
    try {
      return refOf(dom);
    } finally {
      c.virDomainFree(dom);
    }
  },
  undefine: (uuid: string, flags: number) => withDomain(uuid, (d) => check(c.virDomainUndefineFlags(d, flags) as number, 'virDomainUndefineFlags')),
  start: (uuid: string, flags: number) => withDomain(uuid, (d) => check(c.virDomainCreateWithFlags(d, flags) as number, 'virDomainCreateWithFlags')),
  resume: (uuid: string) => withDomain(uuid, (d) => check(c.virDomainResume(d) as number, 'virDomainResume')),
  destroy: (uuid: string) => withDomain(uuid, (d) => check(c.virDomainDestroy(d) as number, 'virDomainDestroy')),
  state: (uuid: string) => withDomain(uuid, (d) => {
    const state = [0];
    const reason = [0];
    check(c.virDomainGetState(d, state, reason, 0) as number, 'virDomainGetState');
    return [state[0], reason[0]];
  }),
  hasManagedSave: (uuid: string) => withDomain(uuid, (d) => check(c.virDomainHasManagedSaveImage(d, 0) as number, 'virDomainHasManagedSaveImage') === 1),
  snapshotXmls: (uuid: string) => withDomain(uuid, (d) => {
    const out: [unknown] = [null];
    const n = check(c.virDomainListAllSnapshots(d, out, 0) as number, 'virDomainListAllSnapshots');
    const snaps = decodeSnapshotArray(out[0], n);
    try {
      return snaps.map((s) => {
        const xml = c.virDomainSnapshotGetXMLDesc(s, 0) as string | null;
        if (xml === null) throw lastError('virDomainSnapshotGetXMLDesc');
        return { name: c.virDomainSnapshotGetName(s) as string, xml };
      });
    } finally {
      for (const s of snaps) c.virDomainSnapshotFree(s);
      if (n > 0) freeArray(out[0]);
    }
  }),
  migrate: (uuid: string, destUri: string, params: MigrateParams, flags: number) => withDomain(uuid, (d) => {
    const list: [unknown] = [null];
    const count = [0];
    const max = [0];
    try {
      for (const [name, value] of [['migrate_uri', params.migrateUri], ['destination_xml', params.destXml], ['persistent_xml', params.persistXml]] as const) {
        if (value !== undefined) check(c.virTypedParamsAddString(list, count, max, name, value) as number, `virTypedParamsAddString(${name})`);
      }
      if (params.bandwidthMiB !== undefined) check(c.virTypedParamsAddULLong(list, count, max, 'bandwidth', params.bandwidthMiB) as number, 'virTypedParamsAddULLong(bandwidth)');
      return check(c.virDomainMigrateToURI3(d, destUri, list[0], count[0], flags) as number, 'virDomainMigrateToURI3');
    } finally {
      if (list[0] !== null) c.virTypedParamsFree(list[0], count[0]!);
    }
  }),
  jobInfo: (uuid: string) => withDomain(uuid, (d) => {
    const info: Record<string, number> = {};
    check(c.virDomainGetJobInfo(d, info) as number, 'virDomainGetJobInfo');
    return info;
  }),
  abortJob: (uuid: string) => withDomain(uuid, (d) => check(c.virDomainAbortJob(d) as number, 'virDomainAbortJob')),
  attachDevice: (uuid: string, xml: string, flags: number) => withDomain(uuid, (d) => check(c.virDomainAttachDeviceFlags(d, xml, flags) as number, 'virDomainAttachDeviceFlags')),
  updateDevice: (uuid: string, xml: string, flags: number) => withDomain(uuid, (d) => check(c.virDomainUpdateDeviceFlags(d, xml, flags) as number, 'virDomainUpdateDeviceFlags')),
  detachDevice: (uuid: string, xml: string, flags: number) => withDomain(uuid, (d) => check(c.virDomainDetachDeviceFlags(d, xml, flags) as number, 'virDomainDetachDeviceFlags')),
  getMetadata: (uuid: string, type: number, uri: string, flags: number) => withDomain(uuid, (d) => {
    const xml = c.virDomainGetMetadata(d, type, uri, flags) as string | null;
    if (xml === null) throw lastError('virDomainGetMetadata');
    return xml;
  }),
  setMetadata: (uuid: string, type: number, xml: string | null, key: string | null, uri: string, flags: number) =>
    withDomain(uuid, (d) => check(c.virDomainSetMetadata(d, type, xml, key, uri, flags) as number, 'virDomainSetMetadata')),
  close: () => {
    if (conn !== null) c.virConnectClose(conn);
    conn = null;
    return null;
  },
};

function serve(request: Request): Response {
  const op = ops[request.op];
  if (op === undefined) return { id: request.id, ok: false, error: { code: -1, domain: 0, message: `unknown operation ${request.op}` } };
  try {
    return { id: request.id, ok: true, value: op(...(request.args as never[])) };
  } catch (err) {
    if (err instanceof CallFailed) return { id: request.id, ok: false, error: err.wire };
    return { id: request.id, ok: false, error: { code: -1, domain: 0, message: err instanceof Error ? err.message : String(err) } };
  }
}

if (data.role === 'events') {
  c.virInitialize();
  serveEventLoop();
} else {
  port.on('message', (request: Request) => port.postMessage(serve(request)));
}

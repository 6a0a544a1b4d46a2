/**
 * koffi declarations for the part of libvirt.so.0 the agent uses. Loaded once per
 * thread that calls libvirt (the worker threads in worker.ts): a handle returned here
 * never leaves the thread that got it.
 *
 * Ownership, for every declaration below:
 *  - `HeapStr` returns are strings libvirt malloc'd for us: koffi copies them into a JS
 *    string and free()s the C string at once (koffi.disposable), exactly once.
 *  - virConnectPtr and virDomainPtr are references we own: each is released with
 *    virConnectClose / virDomainFree by the code that obtained it (worker.ts), in a
 *    `finally`, exactly once.
 *  - virDomainSnapshotPtr (from virDomainListAllSnapshots' array) likewise: each freed
 *    with virDomainSnapshotFree, the array itself with free(), in a `finally`.
 *  - Typed parameter arrays are built by virTypedParamsAdd* (libvirt allocates and grows
 *    them) and released with virTypedParamsFree by the code that built them, exactly once.
 *  - virGetLastError returns libvirt's thread-local error: read, never freed.
 */
import koffi from 'koffi';

const lib = koffi.load('libvirt.so.0');

const virConnectPtr = koffi.pointer('virConnectPtr', koffi.opaque('virConnect'));
const virDomainPtr = koffi.pointer('virDomainPtr', koffi.opaque('virDomain'));
const virDomainSnapshotPtr = koffi.pointer('virDomainSnapshotPtr', koffi.opaque('virDomainSnapshot'));
// A string libvirt allocated and the caller must free: decoded, then freed by koffi.
koffi.disposable('HeapStr', 'str');

export const VirError = koffi.struct('virError', {
  code: 'int',
  domain: 'int',
  message: 'char *',
  level: 'int',
  conn: 'void *',
  dom: 'void *',
  str1: 'char *',
  str2: 'char *',
  str3: 'char *',
  int1: 'int',
  int2: 'int',
  net: 'void *',
});
koffi.pointer('virErrorPtr', VirError);

/** virDomainJobInfo: a job's type and its progress counters (bytes, milliseconds). */
export const JobInfo = koffi.struct('virDomainJobInfo', {
  type: 'int',
  timeElapsed: 'unsigned long long',
  timeRemaining: 'unsigned long long',
  dataTotal: 'unsigned long long',
  dataProcessed: 'unsigned long long',
  dataRemaining: 'unsigned long long',
  memTotal: 'unsigned long long',
  memProcessed: 'unsigned long long',
  memRemaining: 'unsigned long long',
  fileTotal: 'unsigned long long',
  fileProcessed: 'unsigned long long',
  fileRemaining: 'unsigned long long',
});

export type ConnPtr = unknown;
export type DomPtr = unknown;

export const c = {
  virInitialize: lib.func('int virInitialize(void)'),
  virGetVersion: lib.func('int virGetVersion(_Out_ unsigned long *libVer, const char *type, _Out_ unsigned long *typeVer)'),
  virEventRegisterDefaultImpl: lib.func('int virEventRegisterDefaultImpl(void)'),
  virEventRunDefaultImpl: lib.func('int virEventRunDefaultImpl(void)'),
  virEventAddTimeout: lib.func('int virEventAddTimeout(int timeout, void *cb, void *opaque, void *ff)'),
  virEventRemoveTimeout: lib.func('int virEventRemoveTimeout(int timer)'),
  virConnectOpen: lib.func('virConnectPtr virConnectOpen(const char *name)'),
  virConnectClose: lib.func('int virConnectClose(virConnectPtr conn)'),
  virConnectGetLibVersion: lib.func('int virConnectGetLibVersion(virConnectPtr conn, _Out_ unsigned long *libVer)'),
  virConnectGetVersion: lib.func('int virConnectGetVersion(virConnectPtr conn, _Out_ unsigned long *hvVer)'),
  virConnectGetURI: lib.func('HeapStr virConnectGetURI(virConnectPtr conn)'),
  virConnectGetCapabilities: lib.func('HeapStr virConnectGetCapabilities(virConnectPtr conn)'),
  virConnectListAllDomains: lib.func('int virConnectListAllDomains(virConnectPtr conn, _Out_ void **domains, unsigned int flags)'),
  virDomainLookupByName: lib.func('virDomainPtr virDomainLookupByName(virConnectPtr conn, const char *name)'),
  virDomainLookupByUUIDString: lib.func('virDomainPtr virDomainLookupByUUIDString(virConnectPtr conn, const char *uuid)'),
  virDomainGetName: lib.func('const char *virDomainGetName(virDomainPtr dom)'),
  virDomainGetUUIDString: lib.func('int virDomainGetUUIDString(virDomainPtr dom, char *buf)'),
  virDomainGetXMLDesc: lib.func('HeapStr virDomainGetXMLDesc(virDomainPtr dom, unsigned int flags)'),
  virDomainDefineXML: lib.func('virDomainPtr virDomainDefineXML(virConnectPtr conn, const char *xml)'),
  virDomainUndefineFlags: lib.func('int virDomainUndefineFlags(virDomainPtr dom, unsigned int flags)'),
  virDomainCreateWithFlags: lib.func('int virDomainCreateWithFlags(virDomainPtr dom, unsigned int flags)'),
  virDomainResume: lib.func('int virDomainResume(virDomainPtr dom)'),
  virDomainDestroy: lib.func('int virDomainDestroy(virDomainPtr dom)'),
  virDomainGetState: lib.func('int virDomainGetState(virDomainPtr dom, _Out_ int *state, _Out_ int *reason, unsigned int flags)'),
  virDomainAttachDeviceFlags: lib.func('int virDomainAttachDeviceFlags(virDomainPtr dom, const char *xml, unsigned int flags)'),
  virDomainUpdateDeviceFlags: lib.func('int virDomainUpdateDeviceFlags(virDomainPtr dom, const char *xml, unsigned int flags)'),
  virDomainDetachDeviceFlags: lib.func('int virDomainDetachDeviceFlags(virDomainPtr dom, const char *xml, unsigned int flags)'),
  virDomainGetMetadata: lib.func('HeapStr virDomainGetMetadata(virDomainPtr dom, int type, const char *uri, unsigned int flags)'),
  virDomainSetMetadata: lib.func('int virDomainSetMetadata(virDomainPtr dom, int type, const char *metadata, const char *key, const char *uri, unsigned int flags)'),
  virDomainFree: lib.func('int virDomainFree(virDomainPtr dom)'),
  virDomainHasManagedSaveImage: lib.func('int virDomainHasManagedSaveImage(virDomainPtr dom, unsigned int flags)'),
  virDomainListAllSnapshots: lib.func('int virDomainListAllSnapshots(virDomainPtr dom, _Out_ void **snaps, unsigned int flags)'),
  virDomainSnapshotGetName: lib.func('const char *virDomainSnapshotGetName(virDomainSnapshotPtr snap)'),
  virDomainSnapshotGetXMLDesc: lib.func('HeapStr virDomainSnapshotGetXMLDesc(virDomainSnapshotPtr snap, unsigned int flags)'),
  virDomainSnapshotFree: lib.func('int virDomainSnapshotFree(virDomainSnapshotPtr snap)'),
  virTypedParamsAddString: lib.func('int virTypedParamsAddString(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, const char *value)'),
  virTypedParamsAddULLong: lib.func('int virTypedParamsAddULLong(_Inout_ void **params, _Inout_ int *nparams, _Inout_ int *maxparams, const char *name, unsigned long long value)'),
  virTypedParamsFree: lib.func('void virTypedParamsFree(void *params, int nparams)'),
  virDomainMigrateToURI3: lib.func('int virDomainMigrateToURI3(virDomainPtr dom, const char *dconnuri, void *params, unsigned int nparams, unsigned int flags)'),
  virDomainGetJobInfo: lib.func('int virDomainGetJobInfo(virDomainPtr dom, _Out_ virDomainJobInfo *info)'),
  virDomainAbortJob: lib.func('int virDomainAbortJob(virDomainPtr dom)'),
  virConnSetErrorFunc: lib.func('void virConnSetErrorFunc(virConnectPtr conn, void *userData, void *handler)'),
  virGetLastError: lib.func('virErrorPtr virGetLastError(void)'),
  virResetLastError: lib.func('void virResetLastError(void)'),
};

/** Decodes the n domain pointers of a libvirt-allocated array (the caller frees both). */
export function decodeDomainArray(array: unknown, n: number): DomPtr[] {
  return n === 0 ? [] : (koffi.decode(array, koffi.array(virDomainPtr, n)) as DomPtr[]);
}

/** Decodes the n snapshot pointers of a libvirt-allocated array (the caller frees both). */
export function decodeSnapshotArray(array: unknown, n: number): unknown[] {
  return n === 0 ? [] : (koffi.decode(array, koffi.array(virDomainSnapshotPtr, n)) as unknown[]);
}

/** free() for arrays libvirt allocated (virConnectListAllDomains' and virDomainListAllSnapshots' lists). */
export function freeArray(array: unknown): void {
  koffi.free(array);
}

/** A timeout callback type for the event loop: void cb(int timer, void *opaque). */
export const TimeoutCallback = koffi.proto('void virEventTimeoutCallback(int timer, void *opaque)');

export function registerTimeoutCallback(fn: () => void): unknown {
  return koffi.register(fn, koffi.pointer(TimeoutCallback));
}

const ErrorFunc = koffi.proto('void virErrorFunc(void *userData, void *error)');

/**
 * A do-nothing error handler for one connection. Without it libvirt prints every error
 * (including expected ones such as "metadata not found") to stderr; errors still reach
 * callers through virGetLastError. libvirt calls a connection's handler on the thread
 * that made the failing call, which for our connections is always the worker that
 * registered it: koffi requires a callback to run on its own JS thread.
 */
export function silenceConnectionErrors(conn: ConnPtr): void {
  c.virConnSetErrorFunc(conn, null, koffi.register(() => undefined, koffi.pointer(ErrorFunc)));
}

export function decodeError(ptr: unknown): { code: number; domain: number; message: string } | null {
  if (ptr === null) return null;
  const e = koffi.decode(ptr, VirError) as { code: number; domain: number; message: string | null };
  return { code: e.code, domain: e.domain, message: e.message ?? '' };
}

void virConnectPtr;

/**
 * The closed set of things a client may ask, with their parameter schemas. A request
 * becomes an Action here or fails with INVALID_PARAMS listing every bad field by path;
 * nothing past this module sees raw JSON-RPC parameters. Schemas (./schemas.ts) are
 * checked by validators Ajv generated from them at build time (JSON Schema, well kept,
 * fast, precise error paths).
 */
import type { ErrorObject } from 'ajv';
import type { DriveFormat } from '../cloudinit/index.js';
import { AgentError, invalid, type Problem } from '../errors.js';
import type { InputFormat } from '../initialization/index.js';
import { decodeBase64, rawPayloadProblems, type RawFields } from '../payload/raw-payload.js';
import type { BuildSource, DriveSource } from '../payload/drive-source.js';
import type { DriveTicket } from '../payload/drive-ticket.js';
import type { InitializationState } from '../payload/store.js';
import type { DrivePaths, MigrateOptions } from '../vm/emigrate.js';
import { parseVdsmCreate, type VdsmCreate } from '../vm/vdsm-xml.js';
import { SCHEMAS } from './schemas.js';
import { compiledFrom, validators } from './validators.js';

export type Action =
  | { readonly method: 'Host.getCapabilities' }
  | { readonly method: 'Payload.build'; readonly source: BuildSource; readonly domain?: string }
  | { readonly method: 'Payload.attach'; readonly domain: string; readonly source: DriveSource; readonly reinitialize: boolean }
  | { readonly method: 'VM.start'; readonly domain: string; readonly source: DriveSource; readonly reinitialize: boolean; readonly persistent: boolean }
  | { readonly method: 'VM.create'; readonly request: VdsmCreate }
  | { readonly method: 'Payload.detach'; readonly domain: string }
  | { readonly method: 'Payload.get'; readonly domain: string }
  | { readonly method: 'Payload.list' }
  | { readonly method: 'Payload.migrationBegin'; readonly domain: string }
  | { readonly method: 'Payload.migrationPrepare'; readonly ticket: DriveTicket }
  | { readonly method: 'VM.migrate'; readonly domain: string; readonly options: MigrateOptions }
  | { readonly method: 'Payload.migrationFinish'; readonly domain: string; readonly initialization: InitializationState | null }
  | { readonly method: 'Payload.migrationSettle'; readonly domain: string };

export type Method = Action['method'];

export const METHODS = Object.keys(SCHEMAS) as Method[];

// `tsc` alone does not regenerate the validators: one older than its schemas would accept
// or refuse the wrong fields quietly.
if (compiledFrom !== JSON.stringify(SCHEMAS)) throw new Error('dist/src/rpc/validators.js was generated from other schemas than src/rpc/schemas.ts; run npm run build');

function problemOf(e: ErrorObject): Problem {
  const base = `params${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'additionalProperties') return { path: `${base}.${String((e.params as { additionalProperty: string }).additionalProperty)}`, message: 'is not a known field' };
  if (e.keyword === 'required') return { path: `${base}.${String((e.params as { missingProperty: string }).missingProperty)}`, message: 'is required' };
  return { path: base, message: e.message ?? 'is invalid' };
}

function sourceOf(p: Record<string, unknown>, method: string): DriveSource {
  const has = (k: string) => Object.hasOwn(p, k);
  const given = ['initialization', 'files', 'image'].filter(has);
  if (given.length !== 1) {
    const choices = method === 'Payload.build' ? 'initialization or files' : 'initialization, files or image';
    throw invalid('INVALID_PARAMS', `${method} needs its payload`, [{ path: 'params', message: `needs exactly one of ${choices}` }]);
  }
  if (has('driveFormat') && !has('initialization')) {
    // A raw payload is packed as sent (its volId names the label), a pre-built drive is taken as it is.
    throw invalid('INVALID_PARAMS', `${method} cannot change the layout of a drive it does not build`, [
      { path: 'params.driveFormat', message: 'applies to an initialization only' },
    ]);
  }
  if (has('image')) return { kind: 'image', path: p['image'] as string };
  if (has('files')) {
    const files = new Map<string, Uint8Array>();
    const problems: Problem[] = [];
    for (const [path, b64] of Object.entries((p['files'] as { file: Record<string, string> }).file)) {
      const bytes = decodeBase64(b64);
      if (bytes === undefined) problems.push({ path: RAW_FIELDS.file(path), message: 'is not valid base64' });
      else files.set(path, bytes);
    }
    const volId = (p['files'] as { volId?: string }).volId;
    problems.push(...rawPayloadProblems(files, volId, RAW_FIELDS));
    if (problems.length > 0) throw invalid('INVALID_PARAMS', `${method} has an invalid file map`, problems);
    return { kind: 'raw-files', tree: files, ...(volId === undefined ? {} : { label: volId }) };
  }
  const format = p['format'] as InputFormat | undefined;
  const driveFormat = p['driveFormat'] as DriveFormat | undefined;
  return { kind: 'initialization', document: p['initialization'] as string | object, ...(format === undefined ? {} : { format }), ...(driveFormat === undefined ? {} : { driveFormat }) };
}

/** Where a `files` param's parts are, in the request's own terms. */
const RAW_FIELDS: RawFields = {
  volId: 'params.files.volId',
  file: (path) => (path === undefined ? 'params.files.file' : `params.files.file[${JSON.stringify(path)}]`),
};

/** A JSON-RPC method and params as a typed Action, or AgentError INVALID_PARAMS / METHOD_NOT_FOUND. */
export function parseAction(method: string, params: unknown): Action {
  const validate = Object.hasOwn(validators, method) ? validators[method as Method] : undefined;
  if (validate === undefined) throw new AgentError('METHOD_NOT_FOUND', `no method ${JSON.stringify(method.slice(0, 64))}; methods are ${METHODS.join(', ')}`);
  const p = params ?? {};
  if (!validate(p)) throw invalid('INVALID_PARAMS', `invalid parameters for ${method}`, (validate.errors ?? []).map(problemOf));
  const fields = p as Record<string, unknown>;
  const m = method as Method;
  switch (m) {
    case 'Host.getCapabilities':
    case 'Payload.list':
      return { method: m };
    case 'Payload.detach':
    case 'Payload.get':
    case 'Payload.migrationBegin':
    case 'Payload.migrationSettle':
      return { method: m, domain: fields['domain'] as string };
    case 'Payload.migrationPrepare':
      return { method: m, ticket: fields['ticket'] as DriveTicket };
    case 'Payload.migrationFinish':
      return { method: m, domain: fields['domain'] as string, initialization: (fields['initialization'] as InitializationState | null | undefined) ?? null };
    case 'VM.migrate': {
      const destPaths = fields['destPaths'] as DrivePaths | undefined;
      const migrateUri = fields['migrateUri'] as string | undefined;
      const bandwidthMiB = fields['bandwidthMiB'] as number | undefined;
      const options: MigrateOptions = {
        destUri: fields['destUri'] as string,
        mode: fields['mode'] as 'live' | 'offline',
        undefineSource: fields['undefineSource'] !== false,
        ...(destPaths === undefined ? {} : { destPaths }),
        ...(migrateUri === undefined ? {} : { migrateUri }),
        ...(bandwidthMiB === undefined ? {} : { bandwidthMiB }),
      };
      return { method: m, domain: fields['domain'] as string, options };
    }
    case 'Payload.build': {
      const d = fields['domain'] as string | undefined;
      const source = sourceOf(fields, m);
      // The schema has no `image` for Payload.build: there is nothing to build from a drive.
      if (source.kind === 'image') throw new AgentError('INTERNAL', 'Payload.build schema admitted an image');
      return { method: m, source, ...(d === undefined ? {} : { domain: d }) };
    }
    case 'Payload.attach':
      return { method: m, domain: fields['domain'] as string, source: sourceOf(fields, m), reinitialize: fields['reinitialize'] === true };
    case 'VM.start':
      return { method: m, domain: fields['domain'] as string, source: sourceOf(fields, m), reinitialize: fields['reinitialize'] === true, persistent: fields['persistent'] !== false };
    case 'VM.create':
      return { method: m, request: parseVdsmCreate(fields['domainXml'] as string) };
  }
}

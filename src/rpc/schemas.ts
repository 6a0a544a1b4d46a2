/**
 * The JSON schemas of every method's parameters. Plain data: `npm run build` compiles
 * them into validators (tools/compile-schemas.mjs writes dist/src/rpc/validators.js),
 * so the daemon never loads Ajv's compiler. Nothing here may import run-time code.
 */
import type { Options } from 'ajv';
import { DRIVE_FORMATS } from '../cloudinit/drive-format.js';
import type { Method } from './actions.js';

/** Every error, not only the first; unknown keywords and formats are mistakes in a schema. */
export const AJV_OPTIONS = { allErrors: true, strict: true } as const satisfies Options;

const domain = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f/]+$' };
const source = {
  initialization: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }] },
  format: { enum: ['xml', 'json', 'yaml'] },
  // The drive's layout, for an initialization (`format` is already the document's syntax).
  driveFormat: { enum: [...DRIVE_FORMATS] },
  // VDSM's raw payload: {volId, file: {relative path: base64 content}}
  files: {
    type: 'object',
    additionalProperties: false,
    required: ['file'],
    properties: { volId: { type: 'string', maxLength: 32 }, file: { type: 'object', maxProperties: 1024, additionalProperties: { type: 'string' } } },
  },
};

const image = { type: 'string', minLength: 1, maxLength: 4096 };
/** A new instance even when the settings are unchanged (src/payload/instance-lineage.ts). */
const reinitialize = { type: 'boolean' };
/** false: oVirt's Run Once, the drive in this run of the domain only. */
const persistent = { type: 'boolean' };

/**
 * VDSM's VM.create domain XML, payload base64 included. 4 MiB: the engine keeps a file of
 * a payload to 8192 bytes (its PayloadSize), so even hundreds of files fit.
 */
const domainXml = { type: 'string', minLength: 1, maxLength: 4 * 1024 * 1024 };

function object(properties: Record<string, unknown>, required: string[]): object {
  return { type: 'object', additionalProperties: false, properties, required };
}

export const SCHEMAS: Record<Method, object> = {
  'Host.getCapabilities': object({}, []),
  'Payload.build': object({ ...source, domain }, []),
  'Payload.attach': object({ ...source, image, domain, reinitialize }, ['domain']),
  'VM.start': object({ ...source, image, domain, reinitialize, persistent }, ['domain']),
  'VM.create': object({ domainXml }, ['domainXml']),
  'Payload.detach': object({ domain }, ['domain']),
  'Payload.get': object({ domain }, ['domain']),
  'Payload.list': object({}, []),
};

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

const uuid = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' };
const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const nonce = { type: 'string', pattern: '^[0-9a-f]{32}$' };
const instanceId = { type: 'string', minLength: 1, maxLength: 256 };
const generation = { type: 'integer', minimum: 1, maximum: 999_999_999 };
const time = { type: 'string', minLength: 1, maxLength: 64 };
const path = { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' };
const seconds = { anyOf: [{ type: 'number', minimum: 0 }, { type: 'null' }] };
const nullable = (schema: object) => ({ anyOf: [schema, { type: 'null' }] });

/** A domain's VM.initialized state as a record keeps it (src/payload/store.ts InitializationState). */
const initializationState = {
  type: 'object',
  additionalProperties: false,
  required: ['state', 'instanceId', 'run', 'since'],
  properties: {
    state: { enum: ['pending', 'done', 'error'] },
    instanceId,
    run: { type: 'integer', minimum: -1 },
    since: time,
    reportedAt: time,
    bootId: { type: 'string', maxLength: 64 },
    sentAt: seconds,
    errors: { type: 'array', maxItems: 16, items: { type: 'string', maxLength: 500 } },
    stages: {
      type: 'object',
      maxProperties: 8,
      additionalProperties: { type: 'object', additionalProperties: false, required: ['start', 'finished'], properties: { start: seconds, finished: seconds } },
    },
    seconds,
  },
};

/** A migration ticket (src/payload/drive-ticket.ts); its image is checked beyond its shape there. */
const ticket = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'domain', 'drive', 'lineage', 'initialization', 'paths'],
  properties: {
    v: { const: 1 },
    domain: { type: 'object', additionalProperties: false, required: ['uuid', 'name'], properties: { uuid, name: domain } },
    drive: nullable({
      type: 'object',
      additionalProperties: false,
      required: ['image', 'sha256', 'contentDigest', 'instanceId', 'label', 'size', 'attachedAt', 'target', 'bus'],
      properties: {
        // 4 MiB of request line at most carries about 3 MiB of image.
        image: { type: 'string', minLength: 4, maxLength: 4 * 1024 * 1024 },
        sha256,
        contentDigest: sha256,
        instanceId,
        generation,
        reason: { enum: ['first instance', 'unchanged', 'settings changed', 'reinitialize requested', 'instance_id given'] },
        firstInstance: { type: 'boolean' },
        label: { type: 'string', minLength: 1, maxLength: 32 },
        size: { type: 'integer', minimum: 2048, maximum: 3 * 1024 * 1024 },
        nonce,
        attachedAt: time,
        target: { type: 'string', pattern: '^(hd|sd)[a-z]{1,2}$' },
        bus: { enum: ['ide', 'sata', 'scsi'] },
        runOnce: { const: true },
        liveEmpty: { const: true },
      },
    }),
    lineage: nullable({
      type: 'object',
      additionalProperties: false,
      required: ['generation', 'instanceId', 'contentDigest', 'firstInstance', 'seenRunning'],
      properties: { generation, instanceId, contentDigest: sha256, firstInstance: { type: 'boolean' }, seenRunning: { type: 'boolean' }, nonce },
    }),
    initialization: nullable(initializationState),
    paths: { type: 'object', additionalProperties: false, required: ['image', 'channel'], properties: { image: nullable(path), channel: path } },
  },
};

/** Where the destination has the drive (Payload.migrationPrepare's reply `paths`). */
const destPaths = { type: 'object', additionalProperties: false, required: ['image', 'channel'], properties: { image: nullable(path), channel: path } };

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
  'Payload.migrationBegin': object({ domain }, ['domain']),
  'Payload.migrationPrepare': object({ ticket }, ['ticket']),
  'VM.migrate': object(
    {
      domain,
      destUri: { type: 'string', minLength: 1, maxLength: 1024 },
      mode: { enum: ['live', 'offline'] },
      migrateUri: { type: 'string', minLength: 1, maxLength: 1024 },
      destPaths,
      undefineSource: { type: 'boolean' },
      bandwidthMiB: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    },
    ['domain', 'destUri', 'mode'],
  ),
  'Payload.migrationFinish': object({ domain, initialization: nullable(initializationState) }, ['domain']),
  'Payload.migrationSettle': object({ domain }, ['domain']),
};

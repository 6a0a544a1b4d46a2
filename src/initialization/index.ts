/**
 * Every accepted input to one validated Initialization: oVirt REST XML and JSON (actions,
 * VMs and initializations, with the older forms and the SDK's cloud_init shape), and the
 * native schema in JSON or YAML. All problems in a document are reported together, each
 * at the path of the field in the caller's own document.
 */
import yaml from 'js-yaml';
import { Parser } from 'xml2js';
import { invalid } from '../errors.js';
import { InitializationBuilder } from './builder.js';
import { INITIALIZATION_LIMITS as L } from './common.js';
import { ATTRIBUTES, Doc, TEXT } from './doc.js';
import { jsonErrorText } from './json-syntax.js';
import { NATIVE_MARKER, readNative } from './native.js';
import { readOvirt } from './ovirt.js';
import type { ParsedInitialization } from './types.js';

export { INITIALIZATION_LIMITS } from './common.js';
export { inCallerTerms } from './source-map.js';
export type { Initialization, ParsedInitialization } from './types.js';

export type InputFormat = 'xml' | 'json' | 'yaml';

/** By file extension when there is one, else by the first character of the content. */
export function detectFormat(input: string, fileName?: string): InputFormat {
  const ext = fileName?.toLowerCase().match(/\.(xml|json|ya?ml)$/)?.[1];
  if (ext === 'xml') return 'xml';
  if (ext === 'json') return 'json';
  if (ext === 'yaml' || ext === 'yml') return 'yaml';
  const first = input.replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '<') return 'xml';
  if (first === '{' || first === '[') return 'json';
  return 'yaml';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(path: string, message: string): never {
  throw invalid('INVALID_INITIALIZATION', 'The initialization is invalid', [{ path, message }]);
}

function decodeXml(text: string): unknown {
  // xml2js (sax) does not expand DTD entities, but a document that declares any is
  // refused outright: no legitimate initialization needs one.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) fail('', 'XML with a DOCTYPE or entity declarations is refused');
  // xml2js builds plain objects keyed by element and attribute names.
  if (/<\s*(?:__proto__|constructor|prototype)[\s/>]|\s(?:__proto__|constructor|prototype)\s*=/.test(text)) {
    fail('', 'XML element and attribute names __proto__, constructor and prototype are refused');
  }
  let out: unknown;
  let failure: unknown;
  const options = { explicitArray: true, explicitRoot: true, attrkey: ATTRIBUTES, charkey: TEXT, async: false, strict: true, trim: false, emptyTag: '' };
  new Parser(options).parseString(text, (err: unknown, result: unknown) => {
    failure = err;
    out = result;
  });
  if (failure !== null && failure !== undefined) {
    const message = failure instanceof Error ? failure.message : String(failure);
    // sax ends its message with the offending character (`Char: s`): only its numbers are kept.
    const where = /\nLine: (\d+)\nColumn: (\d+)/.exec(message);
    fail('', `is not well-formed XML${where === null ? '' : ` at line ${String(Number(where[1]) + 1)}, column ${where[2]!}`}${plainReason(message)}`);
  }
  if (out === null || out === undefined) fail('', 'is an empty XML document');
  return out;
}

/**
 * The leading words of a parser's message, as `: words`, or nothing. Parsers name what
 * they found (js-yaml: `unidentified alias "x"`, `unknown tag !<x>`; sax: `Char: x`)
 * after the words that say what is wrong; a document's text may hold a password, so it
 * is cut at the first character that is not a letter or a space.
 */
function plainReason(message: string): string {
  const words = /^[A-Za-z][A-Za-z ]*/.exec(message)?.[0].trim() ?? '';
  return words === '' ? '' : `: ${words}`;
}

function decode(text: string, format: InputFormat): unknown {
  try {
    if (format === 'xml') return decodeXml(text);
    if (format === 'json') return JSON.parse(text) as unknown;
    return yaml.load(text, { schema: yaml.CORE_SCHEMA, json: false });
  } catch (err) {
    if (err instanceof Error && err.name === 'AgentError') throw err;
    // A RangeError here is the parser's own recursion limit on absurd nesting.
    if (err instanceof RangeError) return fail('', 'is nested too deeply');
    if (format === 'json') return fail('', `is not valid JSON${jsonErrorText(text)}`);
    // js-yaml's message shows the lines around the error: only its mark and the words of its reason are kept.
    const e = err as { mark?: { line: number; column: number }; reason?: string };
    const where = e.mark === undefined ? '' : ` at line ${String(e.mark.line + 1)}, column ${String(e.mark.column + 1)}`;
    return fail('', `is not valid YAML${where}${plainReason(e.reason ?? '')}`);
  }
}

/**
 * Counts values as a walker sees them, iteratively (no recursion to overflow): YAML
 * aliases make a small text expand into a huge tree, and deep nesting is refused early.
 */
function checkShape(value: unknown): void {
  const values: unknown[] = [value];
  const depths: number[] = [0];
  let nodes = 0;
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop()!;
    if (++nodes > L.maxNodes) fail('', `has more than ${String(L.maxNodes)} values (nested aliases?)`);
    if (depth > L.maxDepth) fail('', `is nested more than ${String(L.maxDepth)} levels deep`);
    if (typeof v !== 'object' || v === null) continue;
    for (const key in v) {
      if (!Object.hasOwn(v, key)) continue;
      values.push((v as Record<string, unknown>)[key]);
      depths.push(depth + 1);
    }
  }
}

function isNative(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, NATIVE_MARKER);
}

/** An already-decoded document (the daemon's `{initialization: {...}}` JSON form, or `fromXml`: xml2js's). */
export function parseInitializationValue(value: unknown, fromXml = false): ParsedInitialization {
  checkShape(value);
  const doc = new Doc(fromXml ? 'xml' : 'tree');
  const builder = new InitializationBuilder(doc);
  if (isNative(value)) readNative(doc, value, builder);
  else readOvirt(doc, value, builder);
  if (doc.problems.length > 0) throw invalid('INVALID_INITIALIZATION', 'The initialization is invalid', doc.problems);
  return { initialization: builder.build(), warnings: doc.warnings, sources: builder.sources };
}

export function parseInitialization(input: string | Uint8Array, format?: InputFormat): ParsedInitialization {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > L.maxInputBytes) fail('', `is ${String(size)} bytes, over the ${String(L.maxInputBytes)}-byte limit`);
  let text: string;
  try {
    text = typeof input === 'string' ? input : utf8.decode(input);
  } catch {
    return fail('', 'is not valid UTF-8');
  }
  text = text.replace(/^\uFEFF/, '');
  const chosen = format ?? detectFormat(text);
  return parseInitializationValue(decode(text, chosen), chosen === 'xml');
}

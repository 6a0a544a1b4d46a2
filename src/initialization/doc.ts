/**
 * Reading an untrusted document (parsed XML, JSON or YAML) field by field, collecting
 * every problem with its path instead of stopping at the first. XML (xml2js with
 * explicitArray) wraps every child in an array; JSON and YAML do not. One mapper serves
 * all of them: a Doc for XML unwraps one-element arrays, a Doc for JSON or YAML refuses
 * a list where one value belongs (`password: ["x"]` is a mistake, not a password).
 */
import type { Problem } from '../errors.js';
import type { Checked } from './checks.js';

export type Mapping = ReadonlyMap<string, unknown>;

export class Doc {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];

  /** `fromXml`: every value arrives as a list of its occurrences. */
  constructor(private readonly fromXml: boolean) {}

  problem(path: string, message: string): undefined {
    this.problems.push({ path, message });
    return undefined;
  }

  /** A single value: XML's one-element arrays unwrapped, repeats reported; a JSON or YAML list refused. */
  one(value: unknown, path: string): unknown {
    if (!Array.isArray(value)) return value;
    if (!this.fromXml) return this.problem(path, 'must be a single value, not a list');
    if (value.length === 1) return value[0];
    return this.problem(path, `is given ${String(value.length)} times; expected once`);
  }

  /**
   * The own fields of a mapping. Unknown keys are problems (a typo must not silently
   * drop a setting); `ignored` keys are accepted with a warning saying why. Children
   * are named under `childPrefix` (default: `path`).
   */
  fields(value: unknown, path: string, known: readonly string[], ignored: Readonly<Record<string, string>> = {}, childPrefix = path): Mapping | undefined {
    const v = this.one(value, path);
    if (v === undefined) return undefined;
    if (v === '' || v === null) return new Map();
    if (typeof v !== 'object' || Array.isArray(v)) return this.problem(path, `must be a mapping of fields, not ${describe(v)}`);
    const out = new Map<string, unknown>();
    for (const key of Object.keys(v)) {
      const child = (v as Record<string, unknown>)[key];
      const at = childPrefix === '' ? key : `${childPrefix}.${key}`;
      if (known.includes(key)) out.set(key, child);
      else if (Object.hasOwn(ignored, key)) this.warnings.push(`${at} is ignored: ${ignored[key]!}`);
      else this.problem(at, `is not a known field${hint(key)}`);
    }
    return out;
  }

  /** Text, from a string or (JSON/YAML) a number or boolean. */
  text(value: unknown, path: string): string | undefined {
    const v = this.one(value, path);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.problem(path, `must be text, not ${describe(v)}`);
  }

  bool(value: unknown, path: string): boolean | undefined {
    const v = this.one(value, path);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
    return this.problem(path, `must be true or false, not ${describe(v)}`);
  }

  /** A list: an array, or one value standing for a list of one (XML, oVirt JSON). */
  list(value: unknown, path: string, max: number): unknown[] {
    if (value === undefined || value === null || value === '') return [];
    const items = Array.isArray(value) ? value : [value];
    if (items.length > max) {
      this.problem(path, `has ${String(items.length)} entries, over the limit of ${String(max)}`);
      return items.slice(0, max);
    }
    return items;
  }

  /** Runs a check; a failure becomes a problem at `path`. */
  check<T>(value: string | undefined, path: string, checker: (v: string) => Checked<T>): T | undefined {
    if (value === undefined) return undefined;
    const result = checker(value);
    if (result.ok) return result.value;
    return this.problem(path, result.message);
  }

  /** A case-insensitive choice; returns the canonical spelling. */
  choice<T extends string>(value: string | undefined, path: string, choices: Readonly<Record<string, T>>): T | undefined {
    if (value === undefined) return undefined;
    const key = value.trim().toLowerCase();
    if (Object.hasOwn(choices, key)) return choices[key];
    return this.problem(path, `${JSON.stringify(value.slice(0, 40))} is not one of ${Object.keys(choices).join(', ')}`);
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 40) ?? ''}`.trim();
}

/** Native-schema keys seen in an oVirt document usually mean the marker is missing. */
const NATIVE_ONLY = new Set(['hostname', 'nics', 'dns', 'runcmd', 'power_state', 'instance_id', 'network_protocol', 'locale']);

function hint(key: string): string {
  if (NATIVE_ONLY.has(key)) return ` here (it is a native-schema field: start the document with "configdrive: 1" to use that schema)`;
  return '';
}

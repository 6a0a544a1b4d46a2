/**
 * Reading an untrusted document (parsed XML, JSON or YAML) field by field, collecting
 * every problem with its path in the caller's document instead of stopping at the first.
 * XML (xml2js with explicitArray) wraps every child in an array and keeps attributes
 * apart (under ATTRIBUTES); JSON and YAML do neither. One mapper serves all of them: a
 * Doc for XML unwraps one-element arrays and reads an attribute as a field of its
 * element (SDK v3 sends `<ip address="..."/>`), a Doc for JSON or YAML refuses a list
 * where one value belongs (`password: ["x"]` is a mistake, not a password).
 */
import type { Problem } from '../errors.js';
import type { Checked } from './checks.js';
import type { PathStyle, SourcePath } from './source-path.js';

/** xml2js keys for an element's attributes and text: characters no XML name can hold. */
export const ATTRIBUTES = '@';
export const TEXT = '#';

export const ANY_FIELD = 'any';

export interface Item {
  readonly value: unknown;
  readonly path: SourcePath;
}

/** The fields of one mapping, each with the path it was found at. */
export class Fields {
  constructor(
    private readonly doc: Doc,
    readonly path: SourcePath,
    /** False when the value was not a mapping (already reported): every field reads as absent. */
    readonly valid: boolean,
    private readonly entries: ReadonlyMap<string, Item> = new Map(),
  ) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  value(key: string): unknown {
    return this.entries.get(key)?.value;
  }

  /** Where `key` is, or would be when absent (for "is missing"). */
  at(key: string): SourcePath {
    return this.entries.get(key)?.path ?? this.path.key(key);
  }

  text(key: string): string | undefined {
    return this.doc.text(this.value(key), this.at(key));
  }

  bool(key: string): boolean | undefined {
    return this.doc.bool(this.value(key), this.at(key));
  }

  fields(key: string, known: readonly string[] | typeof ANY_FIELD, ignored: Readonly<Record<string, string>> = {}): Fields {
    return this.doc.fields(this.value(key), this.at(key), known, ignored);
  }

  list(key: string, max: number): Item[] {
    return this.doc.list(this.value(key), this.at(key), max);
  }
}

export class Doc {
  private readonly found: { readonly path: SourcePath; readonly message: string }[] = [];
  readonly warnings: string[] = [];

  constructor(readonly style: PathStyle) {}

  private get fromXml(): boolean {
    return this.style === 'xml';
  }

  /** A path as this document's form writes it, for messages that name another field. */
  show(path: SourcePath): string {
    return path.render(this.style);
  }

  problem(path: SourcePath, message: string): undefined {
    this.found.push({ path, message });
    return undefined;
  }

  get problems(): Problem[] {
    return this.found.map((p) => ({ path: this.show(p.path), message: p.message }));
  }

  /** A single value: XML's one-element arrays unwrapped, repeats reported; a JSON or YAML list refused. */
  one(value: unknown, path: SourcePath): unknown {
    if (!Array.isArray(value)) return value;
    if (!this.fromXml) return this.problem(path, 'must be a single value, not a list');
    if (value.length === 1) return value[0];
    return this.problem(path, `is given ${String(value.length)} times; expected once`);
  }

  /**
   * The own fields of a mapping. Unknown keys are problems (a typo must not silently
   * drop a setting); `ignored` keys are accepted with a warning saying why. ANY_FIELD
   * takes every key (a wrapper whose other fields are someone else's).
   */
  fields(value: unknown, path: SourcePath, known: readonly string[] | typeof ANY_FIELD, ignored: Readonly<Record<string, string>> = {}): Fields {
    const v = this.one(value, path);
    if (v === undefined) return new Fields(this, path, value === undefined);
    if (v === '' || v === null) return new Fields(this, path, true);
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.problem(path, `must be ${this.fromXml ? 'child elements' : 'a mapping of fields'}, not ${describe(v)}`);
      return new Fields(this, path, false);
    }
    const entries = new Map<string, Item>();
    const take = (key: string, item: Item) => {
      if (entries.has(key)) this.problem(item.path, `is given both as an attribute and as an element`);
      else if (known === ANY_FIELD || known.includes(key)) entries.set(key, item);
      else if (Object.hasOwn(ignored, key)) this.warnings.push(`${this.show(item.path)} is ignored: ${ignored[key]!}`);
      else this.problem(item.path, `is not a known field${hint(key)}`);
    };
    for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
      if (this.fromXml && key === TEXT) {
        if (typeof child === 'string' && child.trim() !== '') this.problem(path, 'has text besides its child elements');
      } else if (this.fromXml && key === ATTRIBUTES) {
        for (const [name, text] of Object.entries(child as Record<string, string>)) if (!isNamespaceDeclaration(name)) take(name, { value: text, path: path.attribute(name) });
      } else {
        take(key, { value: child, path: path.key(key) });
      }
    }
    return new Fields(this, path, true, entries);
  }

  /** Text, from a string or (JSON/YAML) a number or boolean. */
  text(value: unknown, path: SourcePath): string | undefined {
    let v = this.one(value, path);
    if (v === undefined || v === null) return undefined;
    if (this.fromXml && typeof v === 'object') v = this.xmlText(v as Record<string, unknown>, path);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.problem(path, `must be text, not ${describe(v)}`);
  }

  /** An element's text when it also has attributes (each one a field this element does not have). */
  private xmlText(v: Record<string, unknown>, path: SourcePath): unknown {
    if (Object.keys(v).some((k) => k !== TEXT && k !== ATTRIBUTES)) return v;
    for (const name of Object.keys((v[ATTRIBUTES] ?? {}) as Record<string, string>)) {
      if (!isNamespaceDeclaration(name)) this.problem(path.attribute(name), 'is not a known field');
    }
    return v[TEXT] ?? '';
  }

  bool(value: unknown, path: SourcePath): boolean | undefined {
    const v = typeof value === 'boolean' ? value : this.text(value, path);
    if (v === undefined) return undefined;
    if (typeof v === 'boolean') return v;
    if (/^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
    return this.problem(path, `must be true or false, not ${describe(v)}`);
  }

  /** A list: an array, or one value standing for a list of one (XML, oVirt JSON). */
  list(value: unknown, path: SourcePath, max: number): Item[] {
    if (value === undefined || value === null || value === '') return [];
    if (!Array.isArray(value)) return [{ value, path }];
    if (value.length > max) this.problem(path, `has ${String(value.length)} entries, over the limit of ${String(max)}`);
    return value.slice(0, max).map((v: unknown, i) => ({ value: v, path: path.item(i) }));
  }

  /** Runs a check; a failure becomes a problem at `path`. */
  check<T>(value: string | undefined, path: SourcePath, checker: (v: string) => Checked<T>): T | undefined {
    if (value === undefined) return undefined;
    const result = checker(value);
    if (result.ok) return result.value;
    return this.problem(path, result.message);
  }

  /** A case-insensitive choice; returns the canonical spelling. */
  choice<T extends string>(value: string | undefined, path: SourcePath, choices: Readonly<Record<string, T>>): T | undefined {
    if (value === undefined) return undefined;
    const key = value.trim().toLowerCase();
    if (Object.hasOwn(choices, key)) return choices[key];
    return this.problem(path, `${JSON.stringify(value.slice(0, 40))} is not one of ${Object.keys(choices).join(', ')}`);
  }
}

/** `xmlns` and `xmlns:x` declare namespaces; they are no field of anything. */
function isNamespaceDeclaration(name: string): boolean {
  return name === 'xmlns' || name.startsWith('xmlns:');
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

/**
 * YAML as cloud-init reads it. cloud-init parses user_data with PyYAML's safe loader,
 * which implements YAML 1.1; js-yaml implements 1.2. The two disagree on plain scalars
 * such as `yes` (1.1: true) and `0644` (1.1: octal 420), so:
 *  - on the way out every string is double-quoted, so no value can be re-typed or change
 *    the document's structure whatever characters it holds;
 *  - on the way in (a custom cloud-config fragment) plain scalars are resolved with 1.1
 *    rules, so `permissions: 0644` keeps meaning 0o644 after we re-serialize it.
 */
import yaml from 'js-yaml';

export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue };
export type CloudConfig = { readonly [key: string]: YamlValue };

export const CLOUD_CONFIG_HEADER = '#cloud-config';

const BOOL_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const BOOL_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const INT_DECIMAL = /^[-+]?(?:0|[1-9][0-9_]*)$/;
const INT_OCTAL = /^[-+]?0[0-7_]+$/;
const INT_HEX = /^[-+]?0x[0-9a-fA-F_]+$/;
const INT_BINARY = /^[-+]?0b[01_]+$/;
const FLOAT = /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/;

const null11 = new yaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (data: string) => data === '' || data === '~' || /^(?:null|Null|NULL)$/.test(data),
  construct: () => null,
});

const bool11 = new yaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: string) => BOOL_TRUE.test(data) || BOOL_FALSE.test(data),
  construct: (data: string) => BOOL_TRUE.test(data),
});

function parseInt11(data: string): number {
  const sign = data.startsWith('-') ? -1 : 1;
  const body = data.replace(/^[-+]/, '').replaceAll('_', '');
  if (body.startsWith('0x')) return sign * Number.parseInt(body.slice(2), 16);
  if (body.startsWith('0b')) return sign * Number.parseInt(body.slice(2), 2);
  if (body.length > 1 && body.startsWith('0')) return sign * Number.parseInt(body.slice(1), 8);
  return sign * Number.parseInt(body, 10);
}

const int11 = new yaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string) => [INT_DECIMAL, INT_OCTAL, INT_HEX, INT_BINARY].some((re) => re.test(data)),
  construct: parseInt11,
});

const float11 = new yaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string) => FLOAT.test(data) && data !== '.' && data !== '-.' && data !== '+.',
  construct: (data: string) => {
    const lower = data.toLowerCase();
    if (lower.endsWith('.inf')) return lower.startsWith('-') ? -Infinity : Infinity;
    if (lower === '.nan') return NaN;
    return Number.parseFloat(data.replaceAll('_', ''));
  },
});

/** Plain scalars resolved as PyYAML's safe loader does (timestamps stay strings). */
const YAML11_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({ implicit: [null11, bool11, int11, float11] });

/**
 * js-yaml keeps an alias as a second reference to the anchored value, so a few hundred
 * bytes of nested aliases ("billion laughs") load cheaply but expand to gigabytes when
 * dumped again. Count the nodes as the dumper will see them and stop early.
 */
export const MAX_YAML_NODES = 100_000;

function countNodes(value: unknown, budget: { left: number }): void {
  if (--budget.left < 0) throw new yaml.YAMLException(`expands to more than ${String(MAX_YAML_NODES)} values (nested aliases?)`);
  if (Array.isArray(value)) for (const v of value) countNodes(v, budget);
  else if (typeof value === 'object' && value !== null) for (const v of Object.values(value)) countNodes(v, budget);
}

/**
 * Parses YAML with cloud-init's (YAML 1.1) scalar rules; throws js-yaml's YAMLException,
 * also when the document expands beyond MAX_YAML_NODES values.
 */
export function loadYaml11(text: string): unknown {
  const value = yaml.load(text, { schema: YAML11_SCHEMA });
  countNodes(value, { left: MAX_YAML_NODES });
  return value;
}

/** A YAML document (meta-data, network-config); strings always quoted (see above). */
export function dumpYamlDocument(value: YamlValue): string {
  return yaml.dump(value, {
    forceQuotes: true,
    quotingType: '"',
    lineWidth: -1,
    noRefs: true,
    sortKeys: false,
  });
}

/** `#cloud-config` followed by the document. */
export function dumpCloudConfig(config: CloudConfig): string {
  return `${CLOUD_CONFIG_HEADER}\n${dumpYamlDocument(config)}`;
}

/**
 * Merging cloud-config documents: lists are appended, mappings merged key by key,
 * equal scalars kept, and anything else is a conflict the caller decides about.
 * cloud-init's own merger would let one side win silently; a request whose custom
 * script says `timezone: UTC` while its timezone field says `Asia/Jerusalem` is
 * ambiguous, so we report it instead of guessing.
 */
import type { CloudConfig, YamlValue } from './yaml.js';

export interface Conflict {
  /** Dotted key path, e.g. `timezone` or `power_state.mode`. */
  readonly path: string;
  readonly ours: YamlValue;
  readonly theirs: YamlValue;
}

export interface Merged {
  readonly config: CloudConfig;
  readonly conflicts: readonly Conflict[];
}

function isMapping(v: YamlValue | undefined): v is { readonly [key: string]: YamlValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameScalar(a: YamlValue, b: YamlValue): boolean {
  return a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b));
}

function mergeValue(ours: YamlValue, theirs: YamlValue, path: string, conflicts: Conflict[]): YamlValue {
  if (Array.isArray(ours) && Array.isArray(theirs)) return [...(ours as YamlValue[]), ...(theirs as YamlValue[])];
  if (isMapping(ours) && isMapping(theirs)) return mergeMappings(ours, theirs, path, conflicts);
  if (!Array.isArray(ours) && !isMapping(ours) && !Array.isArray(theirs) && !isMapping(theirs) && sameScalar(ours, theirs)) {
    return ours;
  }
  conflicts.push({ path, ours, theirs });
  return ours;
}

function mergeMappings(
  ours: { readonly [key: string]: YamlValue },
  theirs: { readonly [key: string]: YamlValue },
  prefix: string,
  conflicts: Conflict[],
): { [key: string]: YamlValue } {
  const out: { [key: string]: YamlValue } = { ...ours };
  for (const [key, value] of Object.entries(theirs)) {
    const mine = ours[key];
    const path = prefix === '' ? key : `${prefix}.${key}`;
    out[key] = mine === undefined ? value : mergeValue(mine, value, path, conflicts);
  }
  return out;
}

/** `theirs` merged into `ours`; on a conflict `ours` is kept and the conflict listed. */
export function mergeConfigs(ours: CloudConfig, theirs: CloudConfig): Merged {
  const conflicts: Conflict[] = [];
  const config = mergeMappings(ours, theirs, '', conflicts);
  return { config, conflicts };
}

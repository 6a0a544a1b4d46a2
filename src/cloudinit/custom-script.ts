/**
 * The request's custom script, kept as the user-data type cloud-init would take it for
 * (user-data-types.ts). oVirt appends it as raw text after its own YAML (so a duplicate
 * key silently replaces one side); here it is
 *  - a cloud-config fragment (`#cloud-config`, or a YAML mapping without a header, as
 *    oVirt's callers send them), merged into the generated config by mergeConfigs'
 *    rules, conflicts reported;
 *  - an Ignition config (ignition.ts), which becomes the user data unchanged;
 *  - any other type cloud-init takes (a jinja template, `#!`, `#cloud-boothook`,
 *    `#include`, `#part-handler`, a MIME multipart), kept as parts of its own next to
 *    the generated config (user-parts.ts, multipart.ts).
 */
import type { Problem } from '../errors.js';
import { detectIgnition } from './ignition.js';
import { checkJinja, looksLikeJinja } from './jinja.js';
import { mergeConfigs } from './merge.js';
import { NO_USERS } from './users.js';
import { keptFromMime, keptSingle, type KeptParts } from './user-parts.js';
import { CLOUD_CONFIG_TYPE, isMime, isWellFormedText, typeFromStart } from './user-data-types.js';
import { loadYaml11, type CloudConfig, type YamlValue } from './yaml.js';

const PATH = 'custom_script';

/**
 * Bytes of a custom script at most: far above what clouds take as user data (Nova keeps
 * 64 KiB), far below what would make a drive unwieldy.
 */
export const MAX_CUSTOM_SCRIPT_BYTES = 1024 * 1024;

export type CustomScript =
  | { readonly kind: 'none' }
  | { readonly kind: 'cloud-config'; readonly config: CloudConfig }
  | { readonly kind: 'ignition'; readonly text: string; readonly version: string }
  | { readonly kind: 'parts'; readonly parts: KeptParts }
  | { readonly kind: 'invalid'; readonly problems: readonly Problem[] };

function isMapping(v: unknown): v is CloudConfig {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(message: string): CustomScript {
  return { kind: 'invalid', problems: [{ path: PATH, message }] };
}

const NEITHER =
  'is none of the user-data types cloud-init takes: a cloud-config (a YAML mapping, optionally starting with #cloud-config), a script starting with #!, #cloud-boothook, #include, #part-handler, "## template: jinja", a MIME multipart, or an Ignition config';

function fragment(script: string, headed: boolean): CustomScript {
  let parsed: unknown;
  try {
    parsed = loadYaml11(script);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return invalid(headed ? `is not valid YAML: ${String(reason)}` : NEITHER);
  }
  if (headed && (parsed === null || parsed === undefined)) return { kind: 'none' };
  if (!isMapping(parsed)) return invalid(headed ? 'starts with #cloud-config but is not a YAML mapping' : NEITHER);
  return { kind: 'cloud-config', config: parsed };
}

export function classifyCustomScript(script: string | undefined): CustomScript {
  if (script === undefined || script.trim() === '') return { kind: 'none' };
  const bytes = Buffer.byteLength(script, 'utf8');
  if (bytes > MAX_CUSTOM_SCRIPT_BYTES) return invalid(`is ${String(bytes)} bytes, over the limit of ${String(MAX_CUSTOM_SCRIPT_BYTES)}`);
  if (!isWellFormedText(script)) return invalid('is not valid Unicode text (it holds a lone UTF-16 surrogate, which has no UTF-8 form)');
  if (isMime(script)) {
    const kept = keptFromMime(script);
    return kept.ok ? { kind: 'parts', parts: kept.parts } : { kind: 'invalid', problems: kept.problems };
  }
  const ignition = detectIgnition(script);
  if (ignition.kind === 'invalid') return invalid(ignition.message);
  if (ignition.kind === 'ignition') return { kind: 'ignition', text: script, version: ignition.version };
  const type = typeFromStart(script);
  if (type === CLOUD_CONFIG_TYPE) return fragment(script, true);
  if (type !== undefined) {
    const kept = keptSingle(script, type);
    return kept.ok ? { kind: 'parts', parts: kept.parts } : { kind: 'invalid', problems: kept.problems };
  }
  // A template header cloud-init does not recognize would otherwise pass as YAML comments.
  if (looksLikeJinja(script)) {
    const checked = checkJinja(script);
    return invalid(checked.ok ? NEITHER : checked.message);
  }
  return fragment(script, false);
}

function show(v: YamlValue): string {
  return JSON.stringify(v);
}

/** The generated config with the fragment merged in, or one problem per conflicting key. */
export function mergeCustomConfig(generated: CloudConfig, fragment: CloudConfig): { config: CloudConfig; problems: Problem[] } {
  // NO_USERS only means "no default user"; a fragment's own list takes its place.
  const base = generated['users'] === NO_USERS && fragment['users'] !== undefined
    ? Object.fromEntries(Object.entries(generated).filter(([k]) => k !== 'users'))
    : generated;
  const { config, conflicts } = mergeConfigs(base, fragment);
  const problems = conflicts.map((c) => ({
    path: `${PATH}.${c.path}`,
    message: `conflicts with ${c.path} ${show(c.ours)} (set by the request's own settings); got ${show(c.theirs)}`,
  }));
  return { config, problems };
}

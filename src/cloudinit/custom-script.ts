/**
 * The request's custom script, which oVirt appends as raw text after its own YAML (so a
 * duplicate key silently replaces one side). Here it is either
 *  - a cloud-config fragment (`#cloud-config` header, or a YAML mapping without one),
 *    merged into the generated config by mergeConfigs' rules, conflicts reported; or
 *  - a script (`#!`), delivered next to the generated config as a MIME multipart
 *    user_data, which cloud-init runs once, like runcmd, at the end of the first boot.
 */
import { createHash } from 'node:crypto';
import type { Problem } from '../errors.js';
import { mergeConfigs } from './merge.js';
import { NO_USERS } from './users.js';
import { CLOUD_CONFIG_HEADER, loadYaml11, type CloudConfig, type YamlValue } from './yaml.js';

const PATH = 'custom_script';

export type CustomScript =
  | { readonly kind: 'none' }
  | { readonly kind: 'cloud-config'; readonly config: CloudConfig }
  | { readonly kind: 'script'; readonly text: string }
  | { readonly kind: 'invalid'; readonly problem: Problem };

function isMapping(v: unknown): v is CloudConfig {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function classifyCustomScript(script: string | undefined): CustomScript {
  if (script === undefined || script.trim() === '') return { kind: 'none' };
  if (script.startsWith('#!')) return { kind: 'script', text: script };
  const headed = script.startsWith(CLOUD_CONFIG_HEADER);
  let parsed: unknown;
  try {
    parsed = loadYaml11(script);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return {
      kind: 'invalid',
      problem: {
        path: PATH,
        message: headed
          ? `is not valid YAML: ${String(reason)}`
          : 'is neither a cloud-config fragment (a YAML mapping, optionally starting with #cloud-config) nor a script starting with #!',
      },
    };
  }
  if (headed && (parsed === null || parsed === undefined)) return { kind: 'none' };
  if (!isMapping(parsed)) {
    return {
      kind: 'invalid',
      problem: {
        path: PATH,
        message: headed
          ? 'starts with #cloud-config but is not a YAML mapping'
          : 'is neither a cloud-config fragment (a YAML mapping, optionally starting with #cloud-config) nor a script starting with #!',
      },
    };
  }
  return { kind: 'cloud-config', config: parsed };
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

/**
 * user_data as MIME multipart: the generated cloud-config, then the script. The boundary
 * is derived from the content so the same request gives the same bytes; a hash of both
 * parts cannot occur inside either of them. The script is base64-encoded so no byte of
 * it (a line starting with `--`, CR, non-UTF-8) can be read as MIME structure.
 */
export function multipartUserData(cloudConfig: string, script: string): string {
  const boundary = `==configdrive-agent-${createHash('sha256').update(cloudConfig).update('\0').update(script).digest('hex').slice(0, 32)}==`;
  const scriptB64 = Buffer.from(script, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n');
  const configB64 = Buffer.from(cloudConfig, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n');
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    'MIME-Version: 1.0',
    '',
    `--${boundary}`,
    'Content-Type: text/cloud-config; charset="utf-8"',
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="cloud-config.txt"',
    '',
    configB64,
    `--${boundary}`,
    'Content-Type: text/x-shellscript; charset="utf-8"',
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="custom-script.sh"',
    '',
    scriptB64,
    `--${boundary}--`,
    '',
  ].join('\n');
}

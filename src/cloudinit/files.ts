/**
 * Injected files (cc_write_files). Valid UTF-8 text goes on the drive as it is, so it
 * stays readable when someone inspects the drive; anything else as base64.
 */
import type { Initialization, InjectedFile } from '../initialization/types.js';
import type { CloudConfig, YamlValue } from './yaml.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function asText(content: Uint8Array): string | undefined {
  try {
    return utf8.decode(content);
  } catch {
    return undefined;
  }
}

function fileEntry(file: InjectedFile): YamlValue {
  const text = asText(file.content);
  return {
    path: file.path,
    ...(text === undefined ? { content: Buffer.from(file.content).toString('base64'), encoding: 'b64' } : { content: text }),
    ...(file.owner === undefined ? {} : { owner: file.owner }),
    // A string, because cloud-init reads a YAML integer 0644 as octal but 644 as decimal.
    ...(file.mode === undefined ? {} : { permissions: `0${file.mode.toString(8).padStart(3, '0')}` }),
  };
}

export function filesConfig(init: Initialization): CloudConfig {
  return init.files.length === 0 ? {} : { write_files: init.files.map(fileEntry) };
}

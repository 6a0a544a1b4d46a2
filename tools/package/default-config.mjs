/**
 * The package's /etc/configdrived/configdrived.yaml: every key of CONFIG_TABLE with its
 * default, commented out, so the file documents the defaults and changes none of them.
 * It is committed (tools/package/configdrived.yaml) because a conffile's text is what
 * operators are asked about on upgrade; build-deb and test/package refuse a stale copy.
 *
 *   node tools/package/default-config.mjs [COMPILED_CONFIG_JS] > tools/package/configdrived.yaml
 */
import { resolve } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const WIDTH = 88;

const HEADER = [
  'configdrived(8) settings. Every key is listed with its default, commented out: uncomment a line to change that setting.',
  'Files in configdrived.yaml.d/*.yaml next to this one are read after it, in lexical order, and command-line flags come last;',
  '`configdrived --print-config` prints each effective value and where it came from.',
  'Settings marked "reloaded on SIGHUP" change with `systemctl reload configdrived`, the others when the daemon restarts.',
  "Under systemd the listening socket is configdrived.socket's (group configdrive, mode 0660):",
  'socket, socketMode and socketGroup apply only when configdrived creates its own socket.',
].join(' ');

/** `text` as comment lines no wider than WIDTH. */
function comment(text) {
  const lines = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length > 1 && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}

function defaultConfigYaml(table) {
  const keys = Object.entries(table).map(([key, spec]) => {
    const meaning = spec.reload ? `${spec.meaning} (reloaded on SIGHUP)` : spec.meaning;
    // JSON is YAML: strings stay quoted, so a mode such as "0660" is not read as a number.
    return `${comment(meaning)}\n#${key}: ${JSON.stringify(spec.default)}`;
  });
  return `${comment(HEADER)}\n\n${keys.join('\n\n')}\n`;
}

const compiled = resolve(process.argv[2] ?? 'dist/src/config/config.js');
const { CONFIG_TABLE } = await import(pathToFileURL(compiled).href);
process.stdout.write(defaultConfigYaml(CONFIG_TABLE));

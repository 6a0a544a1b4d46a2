/**
 * debian/copyright (machine-readable format 1.0) for what the package ships: the agent
 * under its own license, and every npm package in the staged node_modules under the
 * license its package.json names, with the copyright lines and the license text taken
 * from that package's own files. Generated at build time, so a changed lockfile cannot
 * leave the file behind. Packages with the same holders and text share one paragraph.
 *
 *   node tools/package/copyright.mjs APP_DIR HOMEPAGE > debian/copyright
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';
import { packages } from './node-packages.mjs';

/** SPDX identifiers whose copyright-format 1.0 short names differ. */
const SHORT_NAMES = { MIT: 'Expat', 'BSD-2-Clause': 'BSD-2-clause', 'BSD-3-Clause': 'BSD-3-clause' };

/** Licenses Debian ships in /usr/share/common-licenses: referenced, not copied. */
const COMMON = { 'Apache-2.0': 'Apache-2.0' };

function commonLicense(spdx) {
  if (COMMON[spdx] === undefined) throw new Error(`${spdx} is not in /usr/share/common-licenses`);
  return [`On Debian systems the full text of this license is in /usr/share/common-licenses/${COMMON[spdx]}.`];
}

function licenseText(dir) {
  const file = readdirSync(dir).find((n) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(n));
  return file === undefined ? undefined : readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n').trim();
}

/** "Copyright ..." lines of a license file (a line ending in a comma goes on), else the author. */
function holders(text, pkg) {
  const found = [];
  let open = false;
  for (const line of (text ?? '').split('\n').map((l) => l.trim().replace(/\s+/g, ' '))) {
    if (/^copyright\s+(\(c\)|©|\d{4})/i.test(line)) found.push(line.replace(/^copyright\s+((\(c\)|©)\s*)?/i, ''));
    else if (open && line !== '') found[found.length - 1] += ` ${line}`;
    open = found.length > 0 && line !== '' && found[found.length - 1].endsWith(',');
  }
  if (found.length > 0) return found;
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  return [author ?? `the ${pkg.name} authors`];
}

/** A multi-line field value: continuation lines indented, blank lines as " .". */
function field(name, lines) {
  return [`${name}: ${lines[0]}`, ...lines.slice(1).map((l) => (l.trim() === '' ? ' .' : ` ${l}`))].join('\n');
}

const [appDir, homepage] = process.argv.slice(2);
if (homepage === undefined) throw new Error('usage: copyright.mjs APP_DIR HOMEPAGE');
const agent = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8'));

/** @type {Map<string, { files: string[], copyright: string[], license: string, text: string[] }>} */
const paragraphs = new Map();
for (const dir of packages(appDir)) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (spdx === undefined) throw new Error(`${pkg.name} ${pkg.version} names no license`);
  const text = licenseText(dir);
  const body = COMMON[spdx] ? commonLicense(spdx) : text?.split('\n');
  if (body === undefined) throw new Error(`${pkg.name} ${pkg.version} ships no license text for ${spdx}`);
  const copyright = holders(text, pkg);
  const license = SHORT_NAMES[spdx] ?? spdx;
  const key = JSON.stringify([copyright, license, body]);
  const paragraph = paragraphs.get(key) ?? { files: [], copyright, license, text: body };
  paragraph.files.push(`${relative(appDir, dir)}/*`);
  paragraphs.set(key, paragraph);
}

const out = [
  [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${agent.name}`,
    `Source: ${homepage}`,
    field('Comment', [
      'Paths are relative to /usr/lib/configdrive-agent. The npm packages under',
      'node_modules are the production dependencies of package.json and its lockfile,',
      'shipped as published less their tests, documentation, type declarations and',
      'license files (their texts are here); each is listed with its own license.',
    ]),
  ].join('\n'),
  ['Files: *', 'Copyright: the configdrive-agent authors', field('License', [agent.license, ...commonLicense(agent.license)])].join('\n'),
  ...[...paragraphs.values()]
    .sort((a, b) => a.files[0].localeCompare(b.files[0]))
    .map((p) => [field('Files', p.files), field('Copyright', p.copyright), field('License', [p.license, ...p.text])].join('\n')),
];
process.stdout.write(`${out.join('\n\n')}\n`);

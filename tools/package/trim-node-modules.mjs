/**
 * Leaves in APP_DIR/node_modules what node loads at run time and nothing else: koffi's
 * prebuilt binary for this machine only (it ships one for each of 18 platforms, and its
 * C++ sources), no tests, documentation, type declarations, source maps, dotfiles or
 * dependency CLIs. License texts go too: debian/copyright carries them, so generate it
 * first. Every production dependency is imported afterwards, so a file taken away that
 * a module needs fails the build here, not on a host.
 *
 *   node tools/package/trim-node-modules.mjs APP_DIR
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';
import { execaSync } from 'execa';
import { packages } from './node-packages.mjs';

const UNUSED_DIRS = /^(\..*|test|tests|spec|benchmark|benchmarks|doc|docs|example|examples)$/;
const UNUSED_FILES = /^(\..*|.*\.(md|markdown|ts|mts|cts|map|yml)|(licen[cs]e|copying)(\.\w+)?)$/i;

function size(path) {
  const st = statSync(path);
  return st.isDirectory() ? readdirSync(path).reduce((n, e) => n + size(join(path, e)), 0) : st.size;
}

/** Removes what node does not load below `dir`, then `dir` itself if that left it empty. */
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules' && UNUSED_DIRS.test(entry.name)) rmSync(path, { recursive: true });
    else if (entry.isDirectory()) prune(path);
    else if (UNUSED_FILES.test(entry.name)) rmSync(path);
  }
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
}

if (process.argv[2] === undefined) throw new Error('usage: trim-node-modules.mjs APP_DIR');
const app = resolve(process.argv[2]);
const modules = join(app, 'node_modules');
const before = size(modules);

const require = createRequire(join(app, 'package.json'));
require('koffi');
const native = Object.keys(require.cache).find((f) => f.endsWith('.node'));
if (native === undefined) throw new Error('koffi loaded no native module');
const koffi = join(modules, 'koffi');
const platforms = join(koffi, 'build', 'koffi');
for (const platform of readdirSync(platforms)) if (platform !== basename(dirname(native))) rmSync(join(platforms, platform), { recursive: true });
for (const sources of ['src', 'vendor', 'lib']) rmSync(join(koffi, sources), { recursive: true, force: true });

// The dependencies' command-line tools: the agent never runs them.
for (const dir of packages(app)) {
  const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const file of typeof bin === 'string' ? [bin] : Object.values(bin ?? {})) rmSync(join(dir, file), { force: true });
}
prune(modules);

// Imported as the agent imports them (ESM, resolved from the app), in a process of their own.
const { dependencies } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
execaSync(process.execPath, ['--input-type=module', '-e', Object.keys(dependencies).map((name) => `await import(${JSON.stringify(name)});`).join('\n')], { cwd: app, stdio: 'inherit' });
process.stderr.write(`trim-node-modules: ${relative(app, native)} kept; node_modules ${(before / 1e6).toFixed(1)} MB -> ${(size(modules) / 1e6).toFixed(1)} MB\n`);

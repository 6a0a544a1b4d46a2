/**
 * oVirt documents as oVirt clients send them, in XML or JSON: an <action> (what
 * `vm.start(vm=...)` of the Python SDK v3 and v4 posts: `<action><vm><initialization>`),
 * a <vm> (what the REST API returns and engines pass on: name, os, ... beside its
 * initialization), or the <initialization> alone. REST JSON has no root element: a
 * document with `vm` is an action, one with `initialization` a VM, anything else the
 * initialization's own fields. Only the initialization configures the guest; the
 * fields around it are the engine's, ignored and listed in one warning. Inside it an
 * unknown field is a problem, as everywhere.
 */
import type { InitializationBuilder } from './builder.js';
import { ANY_FIELD, type Doc, type Fields } from './doc.js';
import { INITIALIZATION_FIELDS, INITIALIZATION_IGNORED, readInitialization } from './ovirt-initialization.js';
import { SourcePath } from './source-path.js';

/** Enough to tell what was left out; a hostile document may have thousands. */
const MAX_LISTED = 10;

export function readOvirt(doc: Doc, root: unknown, b: InitializationBuilder): void {
  const top = doc.fields(root, SourcePath.ROOT, ANY_FIELD);
  if (!top.valid) return;
  const ignored: SourcePath[] = [];
  const others = (f: Fields, kept: string) => ignored.push(...f.keys().filter((k) => k !== kept).map((k) => f.at(k)));
  let level = top;
  let wrapper: SourcePath | undefined;
  for (const name of ['action', 'vm']) {
    if (!level.has(name)) continue;
    others(level, name);
    wrapper = level.at(name);
    level = level.fields(name, ANY_FIELD);
    if (!level.valid) return;
  }
  if (level.has('initialization')) {
    others(level, 'initialization');
    readInitialization(doc, level.fields('initialization', INITIALIZATION_FIELDS, INITIALIZATION_IGNORED), b);
  } else if (wrapper !== undefined) {
    doc.problem(wrapper, 'has no initialization element');
  } else {
    readInitialization(doc, doc.fields(root, SourcePath.ROOT, INITIALIZATION_FIELDS, INITIALIZATION_IGNORED), b);
  }
  if (ignored.length > 0) doc.warnings.push(engineFields(doc, ignored));
}

function engineFields(doc: Doc, paths: readonly SourcePath[]): string {
  const listed = paths.slice(0, MAX_LISTED).map((p) => doc.show(p));
  const more = paths.length > MAX_LISTED ? ` and ${String(paths.length - MAX_LISTED)} more` : '';
  return `${listed.join(', ')}${more} ${paths.length === 1 ? 'is' : 'are'} ignored: outside initialization, the engine's fields, not the guest's first-boot settings`;
}

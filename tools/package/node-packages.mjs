/** The npm packages installed under a directory, for the packaging scripts beside this one. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every package directory under `dir`'s node_modules, nested ones included. */
export function packages(dir) {
  const top = join(dir, 'node_modules');
  if (!existsSync(top)) return [];
  return readdirSync(top, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) => (e.name.startsWith('@') ? readdirSync(join(top, e.name)).map((n) => join(top, e.name, n)) : [join(top, e.name)]))
    .flatMap((p) => [p, ...packages(p)]);
}

/**
 * The parameter validators are generated from the schemas at build time
 * (tools/compile-schemas.mjs), so the daemon carries no schema compiler. They must say
 * exactly what Ajv compiling the same schemas at run time says.
 */
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { execa } from 'execa';
import { METHODS } from '../../src/rpc/actions.js';
import { AJV_OPTIONS, SCHEMAS } from '../../src/rpc/schemas.js';
import { validators } from '../../src/rpc/validators.js';

const ACTIONS = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), '../../src/rpc/actions.js')).href;

/** Parameters that pass and fail in every way the schemas can fail, for every method. */
const SAMPLES: unknown[] = [
  {},
  [],
  'text',
  { domain: 'vm1' },
  { domain: '' },
  { domain: 'a/b' },
  { domain: 'x'.repeat(300) },
  { domain: 7, bogus: true, other: null },
  { domain: 'vm1', initialization: '<initialization/>', format: 'xml' },
  { domain: 'vm1', initialization: '', format: 'toml' },
  { domain: 'vm1', initialization: 3 },
  { domain: 'vm1', image: '/srv/drives/a.iso' },
  { domain: 'vm1', image: '' },
  { domain: 'vm1', files: { file: { 'openstack/latest/meta_data.json': 'e30=' } } },
  { domain: 'vm1', files: { volId: 'x'.repeat(40), file: { a: 1 }, extra: 1 } },
  { domain: 'vm1', files: {} },
];

describe('rpc parameter validators compiled at build time', () => {
  it('loads the RPC layer without Ajv or its compiler, only its small run-time helpers', async () => {
    const script = `import { createRequire } from 'node:module';
await import(${JSON.stringify(ACTIONS)});
console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes('/node_modules/ajv/'))));`;
    const r = await execa(process.execPath, ['--input-type=module', '-e', script]);
    const loaded = JSON.parse(r.stdout) as string[];
    assert.deepEqual(loaded.filter((p) => !p.includes('/node_modules/ajv/dist/runtime/')), []);
  });

  it('reports for every method and sample exactly the errors Ajv compiling the schemas at run time reports', () => {
    const ajv = new Ajv(AJV_OPTIONS);
    for (const method of METHODS) {
      const atRunTime = ajv.compile(SCHEMAS[method]);
      const atBuildTime = validators[method];
      for (const params of SAMPLES) {
        const label = `${method} ${JSON.stringify(params)}`;
        assert.equal(atBuildTime(params), atRunTime(params), label);
        assert.deepEqual(atBuildTime.errors, atRunTime.errors, label);
      }
    }
  });
});

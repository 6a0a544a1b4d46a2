/** The seed's REST XML, the input every benchmark builds from. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEED_XML = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/seed/initialization.xml'));

/** The seed's REST XML, the input every benchmark builds from. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEED_XML = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/seed/initialization.xml'));

/** The seed without its <users> (so without a password), as REST XML. */
export const SEED_XML_NO_PASSWORD = SEED_XML.toString('utf8').replace(/<users>[\s\S]*?<\/users>/, '');

/**
 * The same settings in oVirt's REST JSON form, as an engine's JSON client sends them:
 * the XML's elements as keys (what xml2js gives without forced arrays). Parses to the
 * same initialization as the XML (test/initialization checks the forms agree).
 */
export async function seedJsonNoPassword(): Promise<object> {
  const { default: xml2js } = await import('xml2js');
  return (await xml2js.parseStringPromise(SEED_XML_NO_PASSWORD, { explicitArray: false, ignoreAttrs: true })) as object;
}

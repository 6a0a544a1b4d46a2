/** The e2e guests' requests: the seed's settings as test/e2e/fixtures/guest.xml extends them. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInitialization } from '../../src/initialization/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const fixture = (p: string) => readFileSync(resolve(here, '../../../test', p));
const GUEST_XML = fixture('e2e/fixtures/guest.xml').toString('utf8');
/** The guest's settings without regenerate_ssh_keys: the agent's host-key rule decides. */
export const GUEST_RULE_XML = GUEST_XML.replace('<regenerate_ssh_keys>true</regenerate_ssh_keys>', '');
export const GUEST_RULE = parseInitialization(GUEST_RULE_XML).initialization;
/** Generation 2: a new host name, root password and address. */
export const RENEWED = parseInitialization(
  GUEST_RULE_XML.replace('<address>cloudInitInstanceName</address>', '<address>renewedName</address>')
    .replace('<password>myPass</password>', '<password>newPass</password>')
    .replace('192.168.2.11', '192.168.2.22'),
).initialization;
export const SEED = parseInitialization(fixture('fixtures/seed/initialization.xml')).initialization;
export const ROOT_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGTIyIPimoqw9CiTPE17sYN/NvXm0NFnufdTgc2XzEJY root@engine';
export const SEED_ROOT_KEY = 'ssh-rsa AAAAB3Nza[…]75zkdD user@domain.com';
export const ALICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKkR2JEWUvH97rqd2TpiGQ6xIr51mg0jc8/xjV51BbHC alice@laptop';

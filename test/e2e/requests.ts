/** The e2e guests' requests: the seed's settings as test/e2e/fixtures/guest.xml extends them. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInitialization } from '../../src/initialization/index.js';
import type { Expected } from './guest-checks.js';

const here = dirname(fileURLToPath(import.meta.url));
export const fixture = (p: string) => readFileSync(resolve(here, '../../../test', p));
const GUEST_XML = fixture('e2e/fixtures/guest.xml').toString('utf8');
/** The guest's settings without regenerate_ssh_keys: the agent's host-key rule decides. */
export const GUEST_RULE_XML = GUEST_XML.replace('<regenerate_ssh_keys>true</regenerate_ssh_keys>', '');
/**
 * A locale every glibc has, so that the setting is the drive's and not the image's
 * en_US.UTF-8 (oVirt's XML has none: it is the native schema's `locale`).
 */
export const LOCALE = 'C.UTF-8';
export const GUEST_RULE = { ...parseInitialization(GUEST_RULE_XML).initialization, systemLocale: LOCALE };
/** Generation 2: a new host name, root password and address. */
export const RENEWED = {
  ...parseInitialization(
    GUEST_RULE_XML.replace('<address>cloudInitInstanceName</address>', '<address>renewedName</address>')
      .replace('<password>myPass</password>', '<password>newPass</password>')
      .replace('192.168.2.11', '192.168.2.22'),
  ).initialization,
  systemLocale: LOCALE,
};
export const SEED = parseInitialization(fixture('fixtures/seed/initialization.xml')).initialization;
export const ROOT_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGTIyIPimoqw9CiTPE17sYN/NvXm0NFnufdTgc2XzEJY root@engine';
export const SEED_ROOT_KEY = 'ssh-rsa AAAAB3Nza[…]75zkdD user@domain.com';
export const ALICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKkR2JEWUvH97rqd2TpiGQ6xIr51mg0jc8/xjV51BbHC alice@laptop';

/** The files guest.xml writes (and its custom script's mark), with their content. */
export const GUEST_FILES: Readonly<Record<string, string>> = {
  '/tmp/testFile1.txt': 'temp content',
  '/etc/configdrive-e2e/base64.txt': 'line one\nline two: with a colon\n',
  '/var/tmp/custom-script-ran': 'custom script ran as root\n',
};

/** What GUEST_RULE asks of a guest whose domain has `uuid` and the three NICs `macs`. */
export function expectedOf(uuid: string, macs: readonly string[], imageHostKeys: ReadonlyMap<string, string>): Expected {
  const [m0, m1, m2] = macs as [string, string, string];
  return {
    instanceId: `${uuid}-g1`,
    hostname: 'cloudInitInstanceName',
    rootPassword: 'myPass',
    alicePassword: 'alice-Pa55 with spaces',
    rootKeys: [ROOT_KEY, SEED_ROOT_KEY],
    aliceKey: ALICE_KEY,
    timezone: 'Asia/Jerusalem',
    locale: LOCALE,
    dnsServers: ['8.8.8.8', '127.0.0.1'],
    dnsSearch: ['qa.lab', 'redhat.com'],
    macs: [m0, m1, m2],
    address4: '192.168.2.11/24',
    gateway4: '192.168.2.1',
    address6: '2001::1234/64',
    gateway6: '2001::fffa',
    files: GUEST_FILES,
    imageHostKeys,
  };
}

/** Generation 2's settings (RENEWED) as the guest must show them. */
export const RENEWED_EXPECTED = { hostname: 'renewedName', rootPassword: 'newPass', address4: '192.168.2.22/24' };

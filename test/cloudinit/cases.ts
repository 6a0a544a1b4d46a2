/** Shared pieces of the case tables: the seed's settings and checks every drive must pass. */
import assert from 'node:assert/strict';
import type { BuiltDrive } from '../../src/cloudinit/index.js';
import { DATASOURCE_PIN_PATH } from '../../src/cloudinit/index.js';
import type { Initialization } from '../../src/initialization/types.js';
import { clearPassword, DOMAIN_UUID, facts, initialization, nic, user } from '../helpers/initialization.js';
import type { CloudInitView } from './cloud-init-oracle.js';

export const MAC0 = '52:54:00:00:00:01';
export const MAC1 = '52:54:00:00:00:02';
export const MAC2 = '52:54:00:00:00:03';
export const THREE_NICS = facts({ nics: [{ mac: MAC0 }, { mac: MAC1 }, { mac: MAC2 }] });
export const GUEST_MACS = { [MAC0]: 'ens3', [MAC1]: 'ens4', [MAC2]: 'ens5' };
/** The seed's own key, abbreviated there with "[…]": parsers check a key's shape, not its base64. */
export const ROOT_KEY = 'ssh-rsa AAAAB3Nza[…]75zkdD user@domain.com';
export const SEED_PASSWORD = 'myPass';

/**
 * The seed's REST example (cloud-init-integration.txt) as an Initialization, built by
 * hand: what a parser must produce from it. eth1 has no <on_boot>; we take it as on
 * (a DHCP NIC is declared to be used); the XML parser owns that decision.
 */
export function seedInitialization(): Initialization {
  return initialization({
    hostName: 'cloudInitInstanceName',
    users: [user('root', { password: clearPassword(SEED_PASSWORD), authorizedKeys: [ROOT_KEY] })],
    regenerateSshKeys: true,
    timezone: 'Asia/Jerusalem',
    dns: { servers: ['8.8.8.8', '127.0.0.1'], search: ['qa.lab', 'redhat.com'] },
    nics: [
      nic('eth0', {
        ipv4: { boot: 'static', address: '192.168.2.11', prefix: 24, gateway: '192.168.2.1' },
        ipv6: { boot: 'static', address: '2001::1234', prefix: 64, gateway: '2001::fffa' },
      }),
      nic('eth1', { ipv4: { boot: 'dhcp' } }),
      nic('eth2', { ipv6: { boot: 'autoconf' } }),
    ],
    files: [{ path: '/tmp/testFile1.txt', content: new TextEncoder().encode('temp content') }],
  });
}

export const SEED_FACTS = THREE_NICS;

/** What must hold for every drive we build, whatever the settings. */
export function assertSound(view: CloudInitView, built: BuiltDrive, expectedInstanceId = `${DOMAIN_UUID}-g1`): void {
  assert.equal(view.error, undefined, `cloud-init could not read the drive: ${String(view.error)}`);
  assert.equal(view.instance_id, expectedInstanceId);
  assert.equal(built.instanceId, expectedInstanceId);
  assert.ok(view.schema.length >= 1, 'user_data has a cloud-config part');
  for (const report of view.schema) assert.deepEqual(report, { errors: [], warnings: [] });
  assert.equal(view.users.default_user, null, 'cloud-init would create the distro default user');
  assert.deepEqual(view.log_warnings, [], 'cloud-init logged warnings (deprecations) reading the drive');
  const files = (view.cloud_config['write_files'] ?? []) as { path: string; content: string }[];
  const pin = files.find((f) => f.path === DATASOURCE_PIN_PATH);
  assert.ok(pin, 'datasource pin is written');
  // Two entries and no None: ds-identify must really look for the drive (datasource-pin.ts).
  assert.match(pin.content, /^datasource_list: \[ ConfigDrive, NoCloud \]$/m);
}

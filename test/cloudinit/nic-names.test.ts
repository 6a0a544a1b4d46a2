/**
 * The drive's persistent NIC names (src/cloudinit/nic-names.ts): a .link file per NIC
 * whose MAC is known, so a boot without cloud-init keeps the name the drive asked for.
 */
import assert from 'node:assert/strict';
import yaml from 'js-yaml';
import { buildDriveTree, USER_DATA_PATH } from '../../src/cloudinit/index.js';
import { facts } from '../helpers/initialization.js';
import { MAC0, MAC1, MAC2, seedInitialization, THREE_NICS } from './cases.js';

function writeFiles(built: ReturnType<typeof buildDriveTree>): { path: string; content: string; permissions?: string }[] {
  const text = Buffer.from(built.tree.get(USER_DATA_PATH)!).toString('utf8');
  const doc = yaml.load(text) as { write_files?: { path: string; content: string; permissions?: string }[] };
  return doc.write_files ?? [];
}

describe('persistent NIC names on the drive', () => {
  it('writes one systemd .link per NIC, matching its MAC and naming it as requested', () => {
    const links = writeFiles(buildDriveTree(seedInitialization(), THREE_NICS)).filter((f) => f.path.endsWith('.link'));
    assert.deepEqual(
      links.map((f) => [f.path, f.content, f.permissions]),
      [
        ['/etc/systemd/network/10-configdrive-eth0.link', `[Match]\nMACAddress=${MAC0}\n\n[Link]\nName=eth0\n`, '0644'],
        ['/etc/systemd/network/10-configdrive-eth1.link', `[Match]\nMACAddress=${MAC1}\n\n[Link]\nName=eth1\n`, '0644'],
        ['/etc/systemd/network/10-configdrive-eth2.link', `[Match]\nMACAddress=${MAC2}\n\n[Link]\nName=eth2\n`, '0644'],
      ],
    );
  });

  it('writes none for a NIC whose MAC is unknown (an offline build): it would match nothing', () => {
    const built = buildDriveTree(seedInitialization(), facts({ nics: [] }));
    assert.deepEqual(writeFiles(built).filter((f) => f.path.endsWith('.link')), []);
    assert.ok(built.warnings.some((w) => w.includes('no MAC address known')));
  });
});

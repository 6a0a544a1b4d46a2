/**
 * The guest half of VM.initialized as each cloud-init release from 20.4 to 26.x reads
 * it: vendor_data.json must be consumed as a #cloud-config (never the "Broken config
 * drive" a bad file causes), valid under that release's schema, and its bootcmd must
 * survive the merge with the agent's user data, with and without a custom script. The
 * same on a NoCloud drive, whose vendor-data DataSourceNoCloud hands over as the file's
 * bytes, with no JSON around it.
 */
import assert from 'node:assert/strict';
import { buildDriveTree, DRIVE_FORMATS, firstIdentity, NOCLOUD_PATHS, reportNonce, REPORT_PORT, VENDOR_DATA_PATH } from '../../src/cloudinit/index.js';
import { DOMAIN_UUID, facts, initialization } from '../helpers/initialization.js';
import { cloudInitReleases, readWithRelease, type Release } from './cloud-init-generations.js';
import { seedInitialization, SEED_FACTS } from './cases.js';

const KEY = '11'.repeat(32);
const CASES = [
  { label: 'seed settings', init: seedInitialization(), facts: { ...SEED_FACTS, reportKey: KEY } },
  { label: 'cloud-config custom script', init: initialization({ customScript: '#cloud-config\nruncmd:\n  - [touch, /var/tmp/ran]\n' }), facts: facts({ reportKey: KEY }) },
  { label: 'shell custom script', init: initialization({ customScript: '#!/bin/sh\nexit 3\n' }), facts: facts({ reportKey: KEY }) },
];

describe('vendor_data.json on every cloud-init release (the VM.initialized reporter)', function () {
  this.timeout(900_000);
  let releases: Release[] = [];
  before(async () => {
    releases = await cloudInitReleases();
  });

  it('is read as a valid #cloud-config whose bootcmd queues the reporter, on 20.4 through 26.x', async () => {
    assert.ok(releases.length >= 4, `four releases at least: ${releases.map((r) => r.debVersion).join(', ')}`);
    const drives = DRIVE_FORMATS.flatMap((format) => CASES.map((c) => ({ format, label: c.label, ...buildDriveTree(c.init, c.facts, firstIdentity(c.init, c.facts), format) })));
    for (const release of releases) {
      const { release: facts_, results } = await readWithRelease(release, drives.map((d) => ({ tree: d.tree })));
      results.forEach((view, i) => {
        const { format, label } = drives[i]!;
        const what = `${facts_.version}, ${format}, ${label}`;
        assert.equal(view.error, undefined, `${what}: the drive is read`);
        const vendor = view.vendor;
        assert.ok(vendor, `${what}: vendor data consumed`);
        assert.equal(vendor.raw_type, format === 'nocloud' ? 'bytes' : 'str');
        assert.deepEqual(vendor.schema?.errors, [], `${what}: schema errors`);
        assert.deepEqual(vendor.log_warnings, [], `${what}: warnings`);
        const bootcmd = vendor.cloud_config?.['bootcmd'] as unknown[][];
        assert.equal(bootcmd.length, 1);
        assert.deepEqual(vendor.merged_bootcmd, bootcmd, `${what}: user data keeps the vendor bootcmd`);
        const iid = drives[i]!.instanceId;
        assert.deepEqual(bootcmd[0]!.slice(-2), [iid, reportNonce(KEY, DOMAIN_UUID, iid)]);
        assert.match(vendor.shellified ?? '', /^'systemd-run' '--quiet' '--no-block'/m, `${what}: bootcmd runs as one quoted command`);
        assert.ok((vendor.shellified ?? '').includes(`/dev/virtio-ports/${REPORT_PORT}`));
      });
      console.log(`      ${facts_.version}: vendor data read, schema-valid (${facts_.schema_scope.kind} schema), bootcmd kept in all ${String(results.length)} cases (config-2 and NoCloud)`);
    }
  });

  it('is absent from drives built without a report key (offline builds)', () => {
    assert.equal(buildDriveTree(seedInitialization(), SEED_FACTS).tree.has(VENDOR_DATA_PATH), false);
    assert.equal(buildDriveTree(seedInitialization(), SEED_FACTS, firstIdentity(seedInitialization(), SEED_FACTS), 'nocloud').tree.has(NOCLOUD_PATHS.vendorData), false);
  });
});

import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { assertQemuCanRead, firstRefusal, identityFrom, permits, type Identity } from '../../src/payload/qemu-access.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\nkvm:x:108:\nlibvirt-qemu:x:64055:libvirt-qemu\ndisk:x:6:\ncdrom:x:24:someone,libvirt-qemu\n';
const QEMU: Identity = identityFrom(64055, 64055, PASSWD, GROUP);

describe('what QEMU may open (qemu-access)', () => {
  it("gives QEMU libvirt's gid, its user's primary group and the groups that list the user, as libvirt does", () => {
    assert.equal(QEMU.userName, 'libvirt-qemu');
    assert.deepEqual([...QEMU.groups].sort((a, b) => a - b), [24, 108, 64055]);
    assert.deepEqual(identityFrom(4242, 4242, PASSWD, GROUP), { uid: 4242, gid: 4242, groups: [4242], userName: '4242' });
  });

  it('uses the owner bits for the owner, the group bits for a member and the other bits for the rest, never a mix', () => {
    assert.equal(permits({ uid: 64055, gid: 0, mode: 0o077 }, QEMU, 4), false, 'owner without r, even though group and other have it');
    assert.equal(permits({ uid: 0, gid: 108, mode: 0o707 }, QEMU, 4), false, 'member of the group, group bits empty');
    assert.equal(permits({ uid: 0, gid: 108, mode: 0o710 }, QEMU, 1), true);
    assert.equal(permits({ uid: 0, gid: 0, mode: 0o711 }, QEMU, 1), true);
    assert.equal(permits({ uid: 0, gid: 0, mode: 0o711 }, QEMU, 4), false);
    assert.equal(permits({ uid: 0, gid: 0, mode: 0o000 }, { uid: 0, gid: 0, groups: [0], userName: 'root' }, 4), true, 'root reads anything');
  });

  describe('on real files', () => {
    let dir = '';
    const nobody: Identity = { uid: 65534, gid: 65534, groups: [65534], userName: 'nobody' };
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'qemu-access-'));
      mkdirSync(join(dir, 'state', 'images'), { recursive: true });
      writeFileSync(join(dir, 'state', 'images', 'a.iso'), 'x');
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const image = () => join(dir, 'state', 'images', 'a.iso');

    it('names the first directory on the way that QEMU cannot search, with its owner and mode, and the fix', async () => {
      chmodSync(dir, 0o711);
      chmodSync(join(dir, 'state'), 0o750);
      const refusal = await firstRefusal(image(), nobody);
      assert.equal(refusal?.path, join(dir, 'state'));
      assert.equal(refusal.need, 'search');
      await assert.rejects(assertQemuCanRead(image(), nobody), (err: unknown) => {
        assert.ok(err instanceof AgentError && err.code === 'HOST_SETUP');
        assert.match(err.message, /QEMU runs as nobody \(uid 65534/);
        assert.ok(err.message.includes(`cannot search ${join(dir, 'state')} (owner 0, group 0, mode 0750)`), err.message);
        assert.ok(err.message.includes(`Fix: chmod o+x ${join(dir, 'state')}`), err.message);
        return true;
      });
    });

    it('passes a 0711 / 0710-group / 0640-group layout and refuses the same file outside the group', async () => {
      chmodSync(dir, 0o711);
      chmodSync(join(dir, 'state'), 0o711);
      chownSync(join(dir, 'state', 'images'), 0, 65534);
      chmodSync(join(dir, 'state', 'images'), 0o710);
      chownSync(image(), 0, 65534);
      chmodSync(image(), 0o640);
      assert.equal(await firstRefusal(image(), nobody), undefined);
      const outsider: Identity = { uid: 4242, gid: 4242, groups: [4242], userName: 'outsider' };
      assert.deepEqual((await firstRefusal(image(), outsider))?.path, join(dir, 'state', 'images'));
      chmodSync(join(dir, 'state', 'images'), 0o711);
      const refusal = await firstRefusal(image(), outsider);
      assert.equal(refusal?.path, image());
      assert.equal(refusal.need, 'read');
      await assert.rejects(assertQemuCanRead(image(), outsider), /cannot read .*Fix: leave isoGroup unset/);
    });
  });
});

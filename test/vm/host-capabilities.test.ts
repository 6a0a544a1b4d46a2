import assert from 'node:assert/strict';
import { AgentError } from '../../src/errors.js';
import { qemuIdentity } from '../../src/vm/host-capabilities.js';

/** The host part of `virsh capabilities` on Debian 12's libvirtd, trimmed. */
const CAPS = `<capabilities>
  <host>
    <uuid>0f0e0d0c-0b0a-0908-0706-050403020100</uuid>
    <secmodel><model>none</model><doi>0</doi></secmodel>
    <secmodel>
      <model>dac</model>
      <doi>0</doi>
      <baselabel type='kvm'>+64055:+108</baselabel>
      <baselabel type='qemu'>+64055:+64055</baselabel>
    </secmodel>
  </host>
  <guest><os_type>hvm</os_type></guest>
</capabilities>`;

describe("QEMU's identity from libvirt's capabilities", () => {
  it('reads the DAC base label for the domain type the agent defines', () => {
    assert.deepEqual(qemuIdentity(CAPS, 'kvm'), { uid: 64055, gid: 108 });
    assert.deepEqual(qemuIdentity(CAPS, 'qemu'), { uid: 64055, gid: 64055 });
  });

  it('has no identity to offer when libvirt runs without its DAC driver', () => {
    assert.equal(qemuIdentity(CAPS.replace(/<secmodel>\s*<model>dac[\s\S]*?<\/secmodel>/, ''), 'kvm'), undefined);
  });

  it('refuses a label that is not uid:gid instead of guessing', () => {
    assert.throws(() => qemuIdentity(CAPS.replace('+64055:+108', 'system_u:system_r'), 'kvm'), (e: unknown) => e instanceof AgentError && /not uid:gid/.test(e.message));
  });
});

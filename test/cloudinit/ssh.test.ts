import assert from 'node:assert/strict';
import { sshConfig } from '../../src/cloudinit/ssh.js';
import { initialization } from '../helpers/initialization.js';

const FIRST = { instanceId: 'u-g1', firstInstance: true };
const LATER = { instanceId: 'u-g2', firstInstance: false };

describe('cloudinit host-key rule', () => {
  it("leaves cloud-init's regeneration on for a domain's first instance", () => {
    assert.equal(sshConfig(initialization(), FIRST)['ssh_deletekeys'], true);
  });

  it('keeps the keys on a re-initialization unless regeneration is asked for', () => {
    assert.deepEqual(sshConfig(initialization(), LATER), { ssh_deletekeys: false, ssh_genkeytypes: ['rsa', 'ecdsa', 'ed25519'] });
    assert.equal(sshConfig(initialization({ regenerateSshKeys: true }), LATER)['ssh_deletekeys'], true);
  });

  it('names the key types either way, so a kept set gains no type of cloud-init\'s default list (DSA)', () => {
    for (const identity of [FIRST, LATER]) assert.deepEqual(sshConfig(initialization(), identity)['ssh_genkeytypes'], ['rsa', 'ecdsa', 'ed25519']);
  });

  it('keeps the keys always when regeneration is explicitly refused', () => {
    assert.equal(sshConfig(initialization({ regenerateSshKeys: false }), FIRST)['ssh_deletekeys'], false);
  });
});

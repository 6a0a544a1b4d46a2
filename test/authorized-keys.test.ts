import assert from 'node:assert/strict';
import { parseAuthorizedKey } from '../src/authorized-keys.js';

const BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9zIGtleSBmb3IgdGVzdHM';

function accepted(line: string): { options: string; keyType: string; comment: string } {
  const r = parseAuthorizedKey(line);
  assert.ok(r.ok, `${line}: ${r.ok ? '' : r.message}`);
  return { options: r.line.options, keyType: r.line.keyType, comment: r.line.comment };
}

function refused(line: string, why: RegExp): void {
  const r = parseAuthorizedKey(line);
  assert.equal(r.ok, false, `${line} was accepted`);
  if (!r.ok) assert.match(r.message, why, line);
}

describe('authorized_keys lines', () => {
  it('takes a plain key with and without a comment, the abbreviated seed blob included', () => {
    assert.deepEqual(accepted(`ssh-ed25519 ${BLOB}`), { options: '', keyType: 'ssh-ed25519', comment: '' });
    assert.deepEqual(accepted(`ssh-ed25519 ${BLOB} alice@example with spaces`), { options: '', keyType: 'ssh-ed25519', comment: 'alice@example with spaces' });
    assert.equal(accepted('ssh-rsa AAAAB3Nza[…]75zkdD user@domain.com').keyType, 'ssh-rsa');
  });

  it('takes options in sshd syntax: flags, quoted values with commas, spaces and escaped quotes, any case, tab separators', () => {
    assert.equal(accepted(`from="10.0.0.0/8",no-pty ssh-ed25519 ${BLOB} c`).options, 'from="10.0.0.0/8",no-pty');
    assert.equal(accepted(`from="10.0.0.0/8, 192.168.0.0/16" ssh-ed25519 ${BLOB}`).options, 'from="10.0.0.0/8, 192.168.0.0/16"');
    assert.equal(accepted(`command="echo \\"hi, there\\"",restrict ssh-ed25519 ${BLOB} k`).options, 'command="echo \\"hi, there\\"",restrict');
    assert.equal(accepted(`No-Pty,NO-X11-FORWARDING\tssh-ed25519\t${BLOB}`).options, 'No-Pty,NO-X11-FORWARDING');
    assert.equal(accepted(`restrict,pty,permitopen="host:22",permitopen="other:80",principals="a,b" ssh-rsa ${BLOB}`).keyType, 'ssh-rsa');
    assert.equal(accepted(`cert-authority,expiry-time="20301231",environment="A=1 2" ecdsa-sha2-nistp256 ${BLOB}`).keyType, 'ecdsa-sha2-nistp256');
  });

  it('refuses what sshd would refuse, saying why', () => {
    refused(`frm="10.0.0.0/8" ssh-ed25519 ${BLOB}`, /option sshd does not know: "frm=/);
    refused(`from=10.0.0.0/8 ssh-ed25519 ${BLOB}`, /from needs a double-quoted value/);
    refused(`no-pty="yes" ssh-ed25519 ${BLOB}`, /no-pty takes no value/);
    refused(`from="10.0.0.0/8 ssh-ed25519 ${BLOB}`, /leaves a double quote open/);
    refused(`no-pty,,restrict ssh-ed25519 ${BLOB}`, /empty option/);
    refused(`no-pty ${BLOB}`, /options but no key type after them/);
    refused('no-pty ssh-ed25519', /key type but no key/);
    refused('ssh-ed25519', /key type but no key/);
    refused(`ssh-foo ${BLOB}`, /is not an SSH public key/);
    refused(`ssh-ed25519 ${BLOB}\nssh-ed25519 ${BLOB}`, /newline/);
    refused(` ssh-ed25519 ${BLOB}`, /leading or trailing spaces/);
    refused('', /is empty/);
  });
});

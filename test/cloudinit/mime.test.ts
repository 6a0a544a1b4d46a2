import assert from 'node:assert/strict';
import { MIME_LIMITS, parseMime } from '../../src/cloudinit/mime.js';

function message(parts: readonly string[], boundary = 'b1', eol = '\n'): string {
  return [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', '', ...parts.flatMap((p) => [`--${boundary}`, p]), `--${boundary}--`, ''].join(eol);
}

function refused(text: string, why: RegExp): void {
  const r = parseMime(text);
  assert.equal(r.ok, false, 'parsed');
  if (!r.ok) assert.match(r.message, why);
}

describe('cloudinit MIME parts of a caller', () => {
  it('splits nested multiparts into leaves in order, each kept as given, with its body decoded', () => {
    const inner = ['Content-Type: multipart/alternative; boundary=inner', '', '--inner', 'Content-Type: text/x-shellscript', '', '#!/bin/sh', '--inner--'].join('\n');
    const r = parseMime(message(['Content-Type: text/cloud-config\n\n#cloud-config\nruncmd: [x]', inner, `Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${Buffer.from('#!/bin/sh\necho é\n').toString('base64')}`]));
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.deepEqual(r.leaves.map((l) => [l.index, l.contentType]), [[1, 'text/cloud-config'], [2, 'text/x-shellscript'], [3, 'text/plain']]);
    assert.equal(r.leaves[0]?.raw, 'Content-Type: text/cloud-config\n\n#cloud-config\nruncmd: [x]');
    assert.equal(Buffer.from(r.leaves[2]!.payload).toString('utf8'), '#!/bin/sh\necho é\n');
  });

  it('reads CRLF messages, folded headers, unquoted and quoted boundaries, quoted-printable, and text/plain where no type is given', () => {
    const r = parseMime(message(['Content-Type: text/x-shellscript;\r\n charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n#!/bin/sh=\r\necho caf=C3=A9', '\r\necho untyped'], 'with spaces =x', '\r\n'));
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.equal(r.leaves[0]?.contentType, 'text/x-shellscript');
    assert.equal(Buffer.from(r.leaves[0]!.payload).toString('utf8'), '#!/bin/shecho café');
    assert.equal(r.leaves[1]?.contentType, 'text/plain');
  });

  it('refuses what Python would read with a defect and cloud-init would skip or misread', () => {
    refused('Content-Type: multipart/mixed\nMIME-Version: 1.0\n\n--x\n\nhi\n--x--\n', /has no boundary parameter/);
    refused('Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\nno delimiter at all\n', /no line --x starts a part/);
    refused('Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\n--x\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n', /closing line --x-- is missing/);
    refused(message(['this is not a header\n\n#!/bin/sh']), /header line 1 is not "Name: value"/);
    refused(message(['Content-Type: text/plain\nContent-Type: text/cloud-config\n\n#!/bin/sh']), /Content-Type is given twice/);
    refused(message(['Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n#!/bin/sh not base64!']), /base64 body is not base64/);
    refused(message(['Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644']), /x-uuencode.* is not one cloud-init decodes/);
    refused(message(['Content-Type: message/rfc822\n\nSubject: x\n\nhi']), /message\/rfc822 parts are not accepted/);
    refused(message(['Content-Type: nonsense\n\nhi']), /is not type\/subtype/);
    refused('Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\n--x--\n', /no line --x starts a part/);
  });

  it('bounds nesting and the number of parts', () => {
    let nested = 'Content-Type: text/x-shellscript\n\n#!/bin/sh';
    for (let i = 0; i <= MIME_LIMITS.maxDepth; i++) nested = [`Content-Type: multipart/mixed; boundary=n${String(i)}`, '', `--n${String(i)}`, nested, `--n${String(i)}--`].join('\n');
    refused(nested, /nest deeper than 8/);
    refused(message(Array.from({ length: MIME_LIMITS.maxParts + 1 }, () => 'Content-Type: text/x-shellscript\n\n#!/bin/sh')), /more than 64 MIME parts/);
  });
});

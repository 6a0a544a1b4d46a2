/**
 * libvirt's own log during tests (a mocha root-hook plugin, loaded by .mocharc.json):
 * the client library and the embedded driver log every failed call, and the tests make
 * many on purpose (a missing domain, metadata that is not there). Their lines go to a
 * file instead of between mocha's, and a failing test prints the lines logged while it
 * ran, where they help.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'mocha';

const LOG = join(tmpdir(), `configdrive-test-libvirt-${String(process.pid)}.log`);
// Read by virInitialize on the first libvirt thread, so set before any test opens one.
process.env['LIBVIRT_LOG_OUTPUTS'] = `4:file:${LOG}`;

let offset = 0;

function size(): number {
  try {
    return statSync(LOG).size;
  } catch {
    return 0;
  }
}

function since(start: number): string {
  const end = size();
  if (end <= start) return '';
  const fd = openSync(LOG, 'r');
  try {
    const buffer = Buffer.alloc(end - start);
    readSync(fd, buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export const mochaHooks = {
  beforeEach(): void {
    offset = size();
  },
  afterEach(this: Context): void {
    if (this.currentTest?.state !== 'failed') return;
    const lines = since(offset).trimEnd();
    if (lines !== '') process.stderr.write(`      libvirt logged during "${this.currentTest.title}" (${LOG}):\n${lines.replace(/^/gm, '        ')}\n`);
  },
};

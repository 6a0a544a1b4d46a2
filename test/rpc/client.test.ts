/**
 * The client against a real Unix socket whose peer goes away: every call, waiting or
 * new, ends with IO_ERROR instead of waiting for good.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/errors.js';
import { RpcClient } from '../../src/rpc/client.js';

describe('rpc client, when the daemon goes away', () => {
  let dir = '';
  let server: Server;
  let peer: Promise<Socket>;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rpc-client-'));
    server = createServer();
    peer = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(join(dir, 's.sock'), resolve));
  });
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const closed = (e: unknown) => e instanceof AgentError && e.code === 'IO_ERROR' && /closed the connection|connection to the daemon/.test(e.message);

  it('fails a call in flight when the daemon closes the connection, and every later call at once', async () => {
    const client = await RpcClient.connect(join(dir, 's.sock'));
    const waiting = client.call('Payload.list');
    (await peer).destroy();
    await assert.rejects(waiting, closed);
    const started = performance.now();
    await assert.rejects(client.call('Payload.list'), closed);
    assert.ok(performance.now() - started < 100, 'without waiting');
  });
});

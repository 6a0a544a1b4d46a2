/**
 * The socket server over a real Unix socket, with a stand-in for the VM layer (the real
 * one is exercised in test/agent/daemon.test.ts): framing edge cases, protocol errors,
 * limits, notifications, peer credentials, authorization and drain.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AgentError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { Action } from '../../src/rpc/actions.js';
import { RpcClient } from '../../src/rpc/client.js';
import { RpcServer, type RequestContext, type ServerLimits } from '../../src/rpc/server.js';

const LIMITS: ServerLimits = { maxFrameBytes: 4096, idleTimeoutMs: 300, maxConnections: 600, maxInFlight: 600, allowedUids: [], allowedGids: [] };

/** Answers every action by echoing it, or fails the way the name says. */
async function perform(action: Action, ctx: RequestContext): Promise<unknown> {
  if ('domain' in action && action.domain === 'missing') throw new AgentError('DOMAIN_NOT_FOUND', 'no domain missing', { details: { libvirtCode: 42 } });
  if ('domain' in action && action.domain === 'crash') throw new Error('secret internal detail');
  if ('domain' in action && action.domain === 'slow') await new Promise((r) => setTimeout(r, 300));
  return { method: action.method, peerUid: ctx.peer?.uid };
}

/** A raw connection: write bytes, read reply lines. */
class Raw {
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.buffer += c.toString();
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }
  async lines(n: number, timeoutMs = 2000): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.split('\n').length - 1 < n) {
      if (this.closed || Date.now() > deadline) break;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    const all = this.buffer.split('\n').filter((l) => l !== '');
    return all.slice(0, n).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

const errorCode = (line: Record<string, unknown> | undefined) => (line?.['error'] as { code: number; data: { code: string } } | undefined);

describe('rpc server over a real Unix socket', function () {
  this.timeout(30_000);
  let dir = '';
  let path = '';
  let server: RpcServer;
  const logged: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rpc-'));
    path = join(dir, 'sock');
    server = new RpcServer(perform, { ...LIMITS }, createLogger({ write: (l) => logged.push(l), journal: true }));
    await server.listen({ path, mode: 0o660 });
  });
  afterEach(async () => {
    await server.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a request split across many writes, and many requests in one write, in order', async () => {
    const raw = await Raw.open(path);
    const req = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Payload.list' });
    for (const ch of req) raw.socket.write(ch);
    raw.socket.write('\n');
    raw.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'Payload.list' })}\r\n\n${JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'Payload.list' })}\n`);
    const lines = await raw.lines(3);
    assert.deepEqual(lines.map((l) => l['id']).sort(), [1, 2, 3]);
    raw.socket.destroy();
  });

  it('answers invalid JSON and binary garbage with -32700 and keeps serving the connection', async () => {
    const raw = await Raw.open(path);
    raw.socket.write('{"jsonrpc": "2.0", "id": 1,\n');
    raw.socket.write(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x0a]));
    raw.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'Payload.list' })}\n`);
    const lines = await raw.lines(3);
    assert.equal(errorCode(lines[0])?.code, -32700);
    assert.equal(errorCode(lines[1])?.code, -32700);
    assert.equal(lines[2]?.['id'], 9);
    raw.socket.destroy();
  });

  it('rejects an oversized line without buffering it, then serves the next line', async () => {
    const raw = await Raw.open(path);
    raw.socket.write('x'.repeat(20_000));
    raw.socket.write(`\n${JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'Payload.list' })}\n`);
    const lines = await raw.lines(2);
    assert.equal(errorCode(lines[0])?.code, -32600);
    assert.match(String((lines[0]?.['error'] as { message: string }).message), /4096-byte limit/);
    assert.equal(lines[1]?.['id'], 5);
    raw.socket.destroy();
  });

  it('closes a connection that never finishes a line, after the idle timeout', async () => {
    const raw = await Raw.open(path);
    raw.socket.write('{"jsonrpc": "2.0"');
    const lines = await raw.lines(1, 3000);
    assert.match(String((lines[0]?.['error'] as { message: string }).message), /no complete request/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(raw.closed, true);
  });

  it('maps every protocol error to its JSON-RPC code', async () => {
    const raw = await Raw.open(path);
    const send = (v: unknown) => raw.socket.write(`${JSON.stringify(v)}\n`);
    send([{ jsonrpc: '2.0', id: 1, method: 'Payload.list' }]);
    send({ jsonrpc: '1.0', id: 2, method: 'Payload.list' });
    send({ jsonrpc: '2.0', id: 3, method: 'No.such' });
    send({ jsonrpc: '2.0', id: 4, method: 'VM.start', params: { domain: 'x', initialization: '<a/>', surplus: true } });
    send({ jsonrpc: '2.0', id: 5, method: 'VM.start', params: { domain: 'missing', initialization: '<a/>' } });
    send({ jsonrpc: '2.0', id: 6, method: 'Payload.get', params: { domain: 'crash' } });
    const lines = await raw.lines(6);
    const byId = new Map(lines.map((l) => [l['id'], l]));
    assert.equal(errorCode(byId.get(null))?.code, -32600, 'batch');
    assert.equal(errorCode(byId.get(2))?.code, -32600);
    assert.equal(errorCode(byId.get(3))?.code, -32601);
    const invalid = byId.get(4)?.['error'] as { code: number; data: { code: string; problems: { path: string }[] } };
    assert.equal(invalid.code, -32602);
    assert.deepEqual(invalid.data.problems.map((p) => p.path), ['params.surplus']);
    const missing = byId.get(5)?.['error'] as { code: number; data: { code: string; details: Record<string, unknown> } };
    assert.deepEqual([missing.code, missing.data.code, missing.data.details['libvirtCode']], [-32020, 'DOMAIN_NOT_FOUND', 42]);
    const internal = byId.get(6)?.['error'] as { code: number; message: string };
    assert.equal(internal.code, -32603);
    assert.doesNotMatch(internal.message, /secret internal detail/, 'internals stay in the log');
    assert.ok(logged.some((l) => l.startsWith('<3>') && l.includes('secret internal detail')));
    raw.socket.destroy();
  });

  it('serves 500 concurrent connections, each with a request', async () => {
    const clients = await Promise.all(Array.from({ length: 500 }, () => RpcClient.connect(path)));
    const results = await Promise.all(clients.map((c) => c.call<{ method: string }>('Payload.list')));
    assert.equal(results.filter((r) => r.method === 'Payload.list').length, 500);
    for (const c of clients) c.close();
  });

  it('refuses connections over the limit and requests over the in-flight cap with BUSY', async () => {
    server.limits.maxInFlight = 1;
    const c = await RpcClient.connect(path);
    const results = await Promise.allSettled([c.call('Payload.get', { domain: 'slow' }), c.call('Payload.get', { domain: 'slow' })]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const busy = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((busy.reason as AgentError).code, 'BUSY');
    c.close();
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 10));
    server.limits.maxConnections = 1;
    const first = await Raw.open(path);
    const second = await Raw.open(path);
    assert.equal(errorCode((await second.lines(1))[0])?.data.code, 'BUSY');
    first.socket.destroy();
  });

  it('sends notifications to connected clients', async () => {
    const c = await RpcClient.connect(path);
    await c.call('Payload.list');
    const got = new Promise<[string, unknown]>((resolve) => c.onNotification((m, p) => resolve([m, p])));
    server.notify('Payload.attached', { domain: { name: 'vm' } });
    assert.deepEqual(await got, ['Payload.attached', { domain: { name: 'vm' } }]);
    c.close();
  });

  it("logs one line per request with the peer's uid and pid from SO_PEERCRED", async () => {
    const c = await RpcClient.connect(path);
    const r = await c.call<{ peerUid: number }>('Payload.get', { domain: 'vm1' });
    assert.equal(r.peerUid, process.getuid!());
    c.close();
    const line = logged.find((l) => l.includes('domain=vm1'));
    assert.match(line ?? '', new RegExp(`^<6>request id=1 method=Payload.get domain=vm1 peer="uid:${String(process.getuid!())},pid:${String(process.pid)}" ms=[\\d.]+ outcome=ok\n$`));
  });

  it('refuses a uid that is not allowed, checked against the real peer credentials', async () => {
    server.limits.allowedUids = [4242];
    // Let the other uid reach the socket at all: the check under test is the daemon's.
    chmodSync(dir, 0o755);
    chmodSync(path, 0o666);
    const script = `const s = require('net').createConnection(${JSON.stringify(path)}); s.on('data', d => { process.stdout.write(d); s.destroy(); });`;
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { reject: false });
    const reply = JSON.parse(r.stdout) as { error: { data: { code: string } } };
    assert.equal(reply.error.data.code, 'UNAUTHORIZED');
    server.limits.allowedUids = [];
  });

  it('drains requests in flight on close, then refuses new connections', async () => {
    const c = await RpcClient.connect(path);
    const slow = c.call<{ method: string }>('Payload.get', { domain: 'slow' });
    await new Promise((r) => setTimeout(r, 50));
    await server.close(2000);
    assert.equal((await slow).method, 'Payload.get');
    await assert.rejects(RpcClient.connect(path), /cannot connect/);
  });
});

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

  it('refuses a request nested 100,000 deep, object or array, in params or in initialization, with INVALID_PARAMS naming the field and the request\'s own id', async () => {
    server.limits.maxFrameBytes = 4 * 1024 * 1024;
    const raw = await Raw.open(path);
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const requests = [
      `{"jsonrpc":"2.0","id":1,"method":"Payload.build","params":{"initialization":${deepObject}}}`,
      `{"jsonrpc":"2.0","id":2,"method":"VM.start","params":{"domain":"vm","initialization":{"configdrive":1,"x":${deepArray}}}}`,
      `{"jsonrpc":"2.0","id":3,"method":"Payload.build","params":{"files":${deepObject}}}`,
      `{"jsonrpc":"2.0","id":4,"method":"Payload.list","params":${deepArray}}`,
      `{"jsonrpc":"2.0","id":5,"method":"Payload.list","extra":${deepArray}}`,
    ];
    raw.socket.write(`${requests.join('\n')}\n`);
    const byId = new Map((await raw.lines(5, 10_000)).map((l) => [l['id'], l['error'] as { code: number; message: string; data: { code: string; problems: { path: string }[] } }]));
    const expected: [number, string, string][] = [
      [1, 'INVALID_PARAMS', 'params.initialization'],
      [2, 'INVALID_PARAMS', 'params.initialization'],
      [3, 'INVALID_PARAMS', 'params.files'],
      [4, 'INVALID_PARAMS', 'params'],
      [5, 'INVALID_REQUEST', 'extra'],
    ];
    for (const [id, code, field] of expected) {
      const e = byId.get(id);
      assert.deepEqual([e?.data.code, e?.data.problems.map((p) => p.path)], [code, [field]], `request ${String(id)}`);
      assert.match(e?.message ?? '', new RegExp(`${field.replace('.', '\\.')}: is nested deeper than 32 levels$`));
    }
    // 32 levels below a field is the initialization document's own limit, and is let through.
    raw.socket.write(`{"jsonrpc":"2.0","id":6,"method":"Payload.build","params":{"initialization":${'{"a":'.repeat(32)}1${'}'.repeat(32)}}}\n`);
    assert.ok('result' in (await raw.lines(6))[5]!);
    raw.socket.destroy();
  });

  it('answers a syntax error with its byte offset and its id when the line starts with one, never with the text around it, in the reply or the log', async () => {
    const raw = await Raw.open(path);
    const from = logged.length;
    const broken = '{"jsonrpc":"2.0","id":41,"method":"Payload.build","params":{"initialization":{"users":[{"password": Hunter2-secret}]}}}';
    raw.socket.write(`${broken}\n`);
    raw.socket.write('{"method":"Payload.list","id":42,\n');
    const [first, second] = await raw.lines(2);
    assert.equal(first?.['id'], 41);
    assert.deepEqual(first?.['error'], { code: -32700, message: `the request line is not valid JSON at byte ${String(broken.indexOf('Hunter2'))}: unexpected character`, data: { code: 'PARSE_ERROR' } });
    assert.equal(second?.['id'], null, 'the id is only taken from the start of a line');
    assert.equal((second?.['error'] as { message: string }).message, 'the request line is not valid JSON at byte 33: unexpected end of input');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!logged.slice(from).join('').includes('Hunter2'));
    raw.socket.destroy();
  });

  it('refuses a line that is not UTF-8 rather than decoding it with replacement characters, keeping its id', async () => {
    const raw = await Raw.open(path);
    raw.socket.write(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":7,"method":"Payload.get","params":{"domain":"vm'), Buffer.from([0xff, 0xc3]), Buffer.from('"}}\n')]));
    const [reply] = await raw.lines(1);
    assert.equal(reply?.['id'], 7);
    assert.deepEqual(errorCode(reply), { code: -32700, message: 'the request line is not valid UTF-8', data: { code: 'PARSE_ERROR' } });
    raw.socket.destroy();
  });

  it('answers an oversized line with its id when the line starts with {"jsonrpc": "2.0", "id": ID or {"id": ID', async () => {
    const raw = await Raw.open(path);
    const pad = 'x'.repeat(5000);
    raw.socket.write(`{"jsonrpc": "2.0", "id": 17, "method": "Payload.list", "params": {"p": "${pad}"}}\n`);
    raw.socket.write(`{"id":"req-18","jsonrpc":"2.0","method":"Payload.list","params":{"p":"${pad}"}}\n`);
    raw.socket.write(`{"method":"Payload.list","id":19,"params":{"p":"${pad}"}}\n`);
    const lines = await raw.lines(3);
    assert.deepEqual(lines.map((l) => [l['id'], errorCode(l)?.code]), [[17, -32600], ['req-18', -32600], [null, -32600]]);
    raw.socket.destroy();
  });

  it('answers every request of a client that shut down its sending side, a last line without a newline included, then ends', async () => {
    const raw = await Raw.open(path);
    raw.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Payload.get', params: { domain: 'slow' } })}\n`);
    raw.socket.write(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'Payload.list' }));
    raw.socket.end();
    const lines = await raw.lines(2);
    assert.deepEqual(lines.map((l) => l['id']).sort(), [1, 2]);
    for (let i = 0; i < 50 && !raw.closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(raw.closed, true);
  });

  it('closes a connection that trickles bytes without ever finishing a line, after the idle timeout', async () => {
    const raw = await Raw.open(path);
    const trickle = setInterval(() => raw.socket.write(' '), 50);
    raw.socket.on('error', () => clearInterval(trickle));
    const started = Date.now();
    for (let i = 0; i < 100 && !raw.closed; i++) await new Promise((r) => setTimeout(r, 20));
    clearInterval(trickle);
    assert.equal(raw.closed, true, 'still open after 2 s of one byte every 50 ms');
    assert.ok(Date.now() - started < 1000, `closed after ${String(Date.now() - started)} ms`);
  });

  it('keeps a connection that sends a complete request more often than the idle timeout', async () => {
    const c = await RpcClient.connect(path);
    for (let i = 0; i < 6; i++) {
      await c.call('Payload.list');
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal(server.connections, 1);
    c.close();
  });

  it('stops reading a client that does not read its replies, and answers everything once it does', async () => {
    let performed = 0;
    const counting = new RpcServer(
      async (action) => {
        performed++;
        return { method: action.method };
      },
      { ...LIMITS, idleTimeoutMs: 10_000 },
      createLogger({ write: () => undefined }),
    );
    const countingPath = join(dir, 'counting.sock');
    await counting.listen({ path: countingPath, mode: 0o600 });
    const socket = createConnection(countingPath);
    await new Promise((r) => socket.once('connect', r));
    socket.pause();
    const total = 20_000;
    socket.write(Array.from({ length: total }, (_, i) => `${JSON.stringify({ jsonrpc: '2.0', id: i, method: 'Payload.list' })}\n`).join(''));
    await new Promise((r) => setTimeout(r, 1500));
    const whileNotReading = performed;
    // About 1,200 here: 64 KiB of unsent replies plus what the kernel buffers; before, every request was handled.
    assert.ok(whileNotReading < 3000, `${String(whileNotReading)} of ${String(total)} requests were handled for a client that read nothing`);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.resume();
    for (let i = 0; i < 250 && text.split('\n').length <= total; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(text.split('\n').length - 1, total);
    socket.destroy();
    await counting.close(100);
  });

  it('logs the first 100 requests of each second per connection, then one line counting the rest', async () => {
    const from = logged.length;
    const c = await RpcClient.connect(path);
    await Promise.all(Array.from({ length: 500 }, () => c.call('Payload.list')));
    c.close();
    for (let i = 0; i < 75 && !logged.slice(from).some((l) => l.includes('not logged')); i++) await new Promise((r) => setTimeout(r, 20));
    const lines = logged.slice(from);
    const requests = lines.filter((l) => l.startsWith('<6>request ')).length;
    const summary = lines.filter((l) => l.startsWith('<6>more requests not logged '));
    assert.equal(requests, 100);
    assert.deepEqual(summary, [`<6>more requests not logged peer="uid:${String(process.getuid!())},pid:${String(process.pid)}" count=400\n`]);
  });

  it('frees refused connections (over maxConnections, or not allowed) that keep their side open, and close() waits for none of them', async () => {
    server.limits.maxConnections = 1;
    const served = await Raw.open(path);
    const openRefused = async () => {
      const s = createConnection({ path, allowHalfOpen: true });
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Payload.list' })}\n`);
      const reply = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
      return { s, reply };
    };
    const busy = await Promise.all(Array.from({ length: 50 }, openRefused));
    assert.ok(busy.every((b) => b.reply.includes('"BUSY"')));
    served.socket.destroy();
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 10));
    // The refused ones hold no slot: the next connection is served.
    const next = await RpcClient.connect(path);
    assert.equal((await next.call<{ method: string }>('Payload.list')).method, 'Payload.list');
    next.close();
    server.limits.maxConnections = 600;
    // Callers that are not allowed, from another uid, each keeping its side open after the reply.
    server.limits.allowedUids = [4242];
    chmodSync(dir, 0o755);
    chmodSync(path, 0o666);
    const script = `const net = require('net'); let n = 0;
for (let i = 0; i < 50; i++) {
  const s = net.createConnection({ path: process.argv[1], allowHalfOpen: true });
  s.on('error', () => undefined);
  s.on('connect', () => s.write('{"jsonrpc":"2.0","id":1,"method":"Payload.list"}\\n'));
  s.once('data', (d) => { if (!String(d).includes('UNAUTHORIZED')) process.exit(3); if (++n === 50) process.stdout.write('refused\\n'); });
}
setTimeout(() => process.exit(0), 20000);`;
    const nobody = execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script, path], { reject: false });
    await new Promise<void>((resolve, reject) => {
      nobody.stdout!.on('data', (d: Buffer) => d.toString().includes('refused') && resolve());
      void nobody.then((r) => reject(new Error(`the other uid's client ended first: ${String(r.exitCode)} ${String(r.stderr)}`)));
    });
    const started = Date.now();
    await server.close(100);
    const took = Date.now() - started;
    nobody.kill();
    await nobody;
    assert.ok(took < 1500, `close() took ${String(took)} ms with refused connections still open on the client side`);
    for (const b of busy) b.s.destroy();
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

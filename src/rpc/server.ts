/**
 * JSON-RPC 2.0 over a Unix stream socket, one JSON object per line. Bounded everywhere:
 * frame size, idle time, connections, requests in flight. A bad frame gets an error
 * reply and the connection keeps serving; nothing a client sends can stop the daemon.
 * AgentErrors map to the wire in exactly one place, `errorObject`.
 */
import { chmod, chown, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { AgentError, toAgentError } from '../errors.js';
import type { Logger } from '../log.js';
import { peerCredentials, type PeerCredentials } from '../peercred/peercred.js';
import { parseAction, type Action } from './actions.js';
import { LineFramer } from './framing.js';

export interface RequestContext {
  readonly id: string | number | null;
  readonly peer: PeerCredentials | undefined;
  readonly signal: AbortSignal;
}

export type Perform = (action: Action, ctx: RequestContext) => Promise<unknown>;

export interface ServerLimits {
  maxFrameBytes: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxInFlight: number;
  /** Callers allowed besides root; empty means anyone who can open the socket. */
  allowedUids: readonly number[];
  allowedGids: readonly number[];
}

type Id = string | number | null;

/** The one mapping from an error to a JSON-RPC error object; internals stay in the log. */
export function errorObject(err: unknown): { code: number; message: string; data: Record<string, unknown> } {
  const e = toAgentError(err);
  const message = e.code === 'INTERNAL' ? 'internal error; see the daemon log' : e.message;
  return { code: e.rpcCode, message, data: { code: e.code, ...(e.problems.length > 0 ? { problems: e.problems } : {}), ...(Object.keys(e.details).length > 0 ? { details: e.details } : {}) } };
}

function domainOf(action: Action): string | undefined {
  return 'domain' in action ? action.domain : undefined;
}

export class RpcServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private inFlight = 0;
  private readonly abort = new AbortController();
  private closing = false;

  constructor(
    private readonly perform: Perform,
    readonly limits: ServerLimits,
    private readonly log: Logger,
  ) {}

  /** Listens on `path` (mode and group applied) or on a socket systemd handed over. */
  async listen(where: { path: string; mode: number; gid?: number } | { fd: number }): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    if ('fd' in where) {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd: where.fd }, resolve));
      return;
    }
    await removeStaleSocket(where.path);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(where.path, resolve));
    await chmod(where.path, where.mode);
    if (where.gid !== undefined) await chown(where.path, -1, where.gid);
  }

  /** Sends a notification (no id) to every connected client. */
  notify(method: string, params: Record<string, unknown>): void {
    const line = `${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`;
    for (const s of this.sockets) if (!s.destroyed) s.write(line);
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Stops accepting, waits up to `drainMs` for requests in flight, then aborts them. */
  async close(drainMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
    const deadline = Date.now() + drainMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.abort.abort(new AgentError('SHUTTING_DOWN', 'the daemon is shutting down'));
    for (const s of this.sockets) s.end();
    setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 200).unref();
    await closed;
  }

  private accept(socket: Socket): void {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const peer = fd === undefined ? undefined : peerCredentials(fd);
    const reply = (id: Id, body: { result: unknown } | { error: unknown }) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, ...body })}\n`);
    };
    if (this.sockets.size >= this.limits.maxConnections || this.closing) {
      const err = new AgentError(this.closing ? 'SHUTTING_DOWN' : 'BUSY', this.closing ? 'the daemon is shutting down' : `too many connections (limit ${String(this.limits.maxConnections)})`);
      socket.end(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: errorObject(err) })}\n`);
      return;
    }
    if (!this.authorized(peer)) {
      this.log.warning('connection refused', { peer: peerText(peer) });
      socket.end(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: errorObject(new AgentError('UNAUTHORIZED', `uid ${String(peer?.uid)} is not allowed to use this daemon`)) })}\n`);
      return;
    }
    this.sockets.add(socket);
    const framer = new LineFramer(this.limits.maxFrameBytes);
    const busy = { requests: 0 };
    // Idle means: nothing arrived and nothing is being worked on for this connection.
    socket.setTimeout(this.limits.idleTimeoutMs, () => {
      if (busy.requests > 0) {
        socket.setTimeout(this.limits.idleTimeoutMs);
        return;
      }
      reply(null, { error: errorObject(new AgentError('INVALID_REQUEST', `no complete request for ${String(this.limits.idleTimeoutMs)} ms; closing`)) });
      socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.kind === 'oversized') {
          reply(null, { error: errorObject(new AgentError('INVALID_REQUEST', `request line over the ${String(this.limits.maxFrameBytes)}-byte limit`)) });
          continue;
        }
        busy.requests++;
        void this.handle(event.text, peer, reply).finally(() => busy.requests--);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private authorized(peer: PeerCredentials | undefined): boolean {
    const { allowedUids, allowedGids } = this.limits;
    if (allowedUids.length === 0 && allowedGids.length === 0) return true;
    if (peer === undefined) return false;
    return peer.uid === 0 || allowedUids.includes(peer.uid) || allowedGids.includes(peer.gid);
  }

  private async handle(text: string, peer: PeerCredentials | undefined, reply: (id: Id, body: { result: unknown } | { error: unknown }) => void): Promise<void> {
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      reply(null, { error: errorObject(new AgentError('PARSE_ERROR', 'the request line is not valid JSON')) });
      return;
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      reply(null, { error: errorObject(new AgentError('INVALID_REQUEST', Array.isArray(request) ? 'batch requests are not supported; send one request per line' : 'a request is a JSON object')) });
      return;
    }
    const r = request as Record<string, unknown>;
    const rawId = r['id'];
    const isNotification = !Object.hasOwn(r, 'id');
    const id: Id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    if (r['jsonrpc'] !== '2.0' || typeof r['method'] !== 'string' || (rawId !== undefined && id === null && rawId !== null)) {
      reply(id, { error: errorObject(new AgentError('INVALID_REQUEST', 'expected {"jsonrpc": "2.0", "id": string|number, "method": string, "params": object}')) });
      return;
    }
    const method = r['method'];
    const started = performance.now();
    let action: Action | undefined;
    let outcome = 'ok';
    try {
      if (this.inFlight >= this.limits.maxInFlight) throw new AgentError('BUSY', `too many requests in flight (limit ${String(this.limits.maxInFlight)}); retry`);
      if (this.closing) throw new AgentError('SHUTTING_DOWN', 'the daemon is shutting down');
      action = parseAction(method, r['params']);
      this.inFlight++;
      try {
        const result = await this.perform(action, { id, peer, signal: this.abort.signal });
        if (!isNotification) reply(id, { result });
      } finally {
        this.inFlight--;
      }
    } catch (err) {
      const e = toAgentError(err);
      outcome = e.code;
      if (e.code === 'INTERNAL') this.log.error('request failed unexpectedly', { id: String(id), method, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      if (!isNotification) reply(id, { error: errorObject(e) });
    }
    const fields = { id: String(id), method: method.slice(0, 64), domain: action === undefined ? undefined : domainOf(action), peer: peerText(peer), ms: (performance.now() - started).toFixed(1), outcome };
    if (outcome === 'ok' || toAgentErrorExpected(outcome)) this.log.info('request', fields);
    else this.log.error('request', fields);
  }
}

function toAgentErrorExpected(code: string): boolean {
  try {
    return new AgentError(code as never, '').expected;
  } catch {
    return false;
  }
}

function peerText(peer: PeerCredentials | undefined): string {
  return peer === undefined ? 'unknown' : `uid:${String(peer.uid)},pid:${String(peer.pid)}`;
}

/** A socket file left by a crash is removed; one that answers belongs to a running daemon. */
async function removeStaleSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new AgentError('HOST_SETUP', `another daemon is listening on ${path}`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new AgentError('IO_ERROR', `cannot remove the stale socket ${path}: ${String(err.code)}`);
  });
}

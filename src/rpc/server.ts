/**
 * JSON-RPC 2.0 over a Unix stream socket, one JSON object per line. Bounded everywhere:
 * frame size, nesting, idle time, connections, requests in flight, unsent replies and
 * log lines per connection. A bad frame gets an error reply and the connection keeps
 * serving; nothing a client sends can stop the daemon or keep a descriptor from it.
 * AgentErrors map to the wire in exactly one place, `errorObject`.
 */
import { chmod, chown, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { AgentError, invalid, toAgentError, type Problem } from '../errors.js';
import { INITIALIZATION_LIMITS } from '../initialization/common.js';
import { jsonErrorText } from '../initialization/json-syntax.js';
import type { Logger } from '../log.js';
import { peerCredentials, type PeerCredentials } from '../peercred/peercred.js';
import { parseAction, type Action } from './actions.js';
import { leadingId, LineFramer, type FrameEvent, type Id } from './framing.js';

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

/**
 * Nesting and values allowed below any field of a request: the initialization document's
 * own limits, which no accepted document comes near. Beyond them a value never reaches a
 * build thread: the structured clone that takes it there would overflow on deep nesting,
 * and would copy a large document only for the thread to refuse it.
 */
export const MAX_FIELD_DEPTH = INITIALIZATION_LIMITS.maxDepth;
export const MAX_FIELD_VALUES = INITIALIZATION_LIMITS.maxNodes;

/** A connection whose unsent replies pass this is not read until they drain. */
export const MAX_UNSENT_BYTES = 16 * 1024;

/**
 * Request lines logged per second for one connection, and for all of them together
 * (journald's own default limit is 10,000 lines in 30 s); refused connections have a
 * share of their own. Normal traffic stays under both; a flood costs a line a second.
 */
export const LOGGED_PER_CONNECTION = 100;
export const LOGGED_PER_SECOND = 250;

/** Frames handled from one connection per event-loop turn, so that a flooding client cannot delay the others' turns. */
export const FRAMES_PER_TURN = 4;

/** How long a connection the daemon has refused or found idle stays open for the peer to read its last line. */
export const CLOSE_GRACE_MS = 1000;

/** Refused connections kept open for their grace at once: a flood of them holds no more descriptors. */
export const MAX_LINGERING_REFUSALS = 256;

type Body = { result: unknown } | { error: unknown };

/** The one mapping from an error to a JSON-RPC error object; internals stay in the log. */
export function errorObject(err: unknown): { code: number; message: string; data: Record<string, unknown> } {
  const e = toAgentError(err);
  const message = e.code === 'INTERNAL' ? 'internal error; see the daemon log' : e.message;
  return { code: e.rpcCode, message, data: { code: e.code, ...(e.problems.length > 0 ? { problems: e.problems } : {}), ...(Object.keys(e.details).length > 0 ? { details: e.details } : {}) } };
}

function domainOf(action: Action): string | undefined {
  // VM.create's domain is named by its XML, which is never logged (it carries the payload).
  if (action.method === 'VM.create') return action.request.name;
  return 'domain' in action ? action.domain : undefined;
}

const line = (id: Id, body: Body) => `${JSON.stringify({ jsonrpc: '2.0', id, ...body })}\n`;

/**
 * Ends a connection the daemon is done with. The peer gets the last line and EOF and may
 * still write (its writes are read and dropped, so it sees the line rather than EPIPE);
 * the descriptor is freed when the peer closes, or after `graceMs` whatever it does.
 */
function closeAfterGrace(socket: Socket, graceMs: number): void {
  const timer = setTimeout(() => socket.destroy(), graceMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end();
}

/**
 * The first field of a request whose value nests deeper than MAX_FIELD_DEPTH or holds
 * more than MAX_FIELD_VALUES values (counted as the initialization document counts
 * them), named `params.X` for a parameter, else by the member's name. Iterative, with its
 * own stack: a recursive walk would overflow on the very input it is looking for.
 */
function shapeProblem(request: Record<string, unknown>): Problem | undefined {
  const fields: string[] = [];
  const counts: number[] = [];
  const values: object[] = [];
  const depths: number[] = [];
  const owners: number[] = [];
  const visit = (value: unknown, depth: number, owner: number): Problem | undefined => {
    if (depth > MAX_FIELD_DEPTH) return { path: fields[owner]!, message: `is nested deeper than ${String(MAX_FIELD_DEPTH)} levels` };
    if (++counts[owner]! > MAX_FIELD_VALUES) return { path: fields[owner]!, message: `holds more than ${String(MAX_FIELD_VALUES)} values` };
    if (typeof value === 'object' && value !== null) {
      values.push(value);
      depths.push(depth);
      owners.push(owner);
    }
    return undefined;
  };
  const field = (value: unknown, name: string) => {
    // The name goes back in the reply: a hostile key is cut to the length of a real one.
    fields.push(name.slice(0, 64));
    counts.push(0);
    visit(value, 0, fields.length - 1);
  };
  for (const key of Object.keys(request)) {
    const value = request[key];
    if (key === 'params' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const name of Object.keys(value)) field((value as Record<string, unknown>)[name], `params.${name.slice(0, 64)}`);
    } else field(value, key);
  }
  while (values.length > 0) {
    const value = values.pop()!;
    const depth = depths.pop()! + 1;
    const owner = owners.pop()!;
    const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
    for (const child of children) {
      const problem = visit(child, depth, owner);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

type Level = 'info' | 'warning' | 'error';
const SEVERITY: Record<Level, number> = { info: 0, warning: 1, error: 2 };

/**
 * A share of the log: at most `perSecond` lines a second, the rest counted in one line
 * written when that second ends. A line must also fit its `parent`'s share (all the
 * connections together); one that does not is counted there. Either way every line is
 * written or counted in a summary that is (`more requests not logged ... count=N`).
 */
class LogBudget {
  private windowStart = -Infinity;
  private logged = 0;
  private skipped = 0;
  /** A summary is written at the level of the most severe line it stands for. */
  private level: Level = 'info';
  private summary: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly what: string,
    private readonly fields: Readonly<Record<string, unknown>>,
    private readonly perSecond: number,
    private readonly parent?: LogBudget,
  ) {}

  /** Whether a line standing for `count` lines may be written now; if not, they are counted. */
  admit(level: Level, count = 1): boolean {
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      this.flush();
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged >= this.perSecond) {
      if (this.skipped === 0) {
        this.summary = setTimeout(() => this.flush(), this.windowStart + 1000 - now);
        this.summary.unref();
      }
      this.skipped += count;
      if (SEVERITY[level] > SEVERITY[this.level]) this.level = level;
      return false;
    }
    if (this.parent !== undefined && !this.parent.admit(level, count)) return false;
    this.logged++;
    return true;
  }

  /** Writes the count of lines left out, if any were; the summary itself is subject to the parent's share. */
  flush(): void {
    clearTimeout(this.summary);
    if (this.skipped === 0) return;
    const { skipped, level } = this;
    this.skipped = 0;
    this.level = 'info';
    if (this.parent !== undefined && !this.parent.admit(level, skipped)) return;
    this.log[level](`more ${this.what} not logged`, { ...this.fields, count: skipped });
  }
}

/**
 * One served connection. Frames are handled in arrival order, FRAMES_PER_TURN per
 * event-loop turn; reading stops while frames wait, which they do while the replies the
 * peer has not taken pass MAX_UNSENT_BYTES. Idle means no complete request and no reply
 * for `idleTimeoutMs` with nothing in flight: bytes that never make a line do not count.
 * After the peer's FIN, every complete request (and a last line without a newline) is
 * still answered, then the connection is ended.
 */
class Connection {
  private readonly framer: LineFramer;
  private working = 0;
  /** Frames are waiting for 'drain' or for the next turn. */
  private held = false;
  private lastActivity = performance.now();
  private idle: NodeJS.Timeout;
  private peerEnded = false;
  private ending = false;
  readonly requestLog: LogBudget;

  constructor(
    readonly socket: Socket,
    readonly peer: PeerCredentials | undefined,
    private readonly limits: ServerLimits,
    log: Logger,
    allRequests: LogBudget,
    private readonly handle: (text: string, conn: Connection) => Promise<void>,
  ) {
    this.framer = new LineFramer(limits.maxFrameBytes);
    this.requestLog = new LogBudget(log, 'requests', { peer: peerText(peer) }, LOGGED_PER_CONNECTION, allRequests);
    this.idle = setTimeout(() => this.checkIdle(), limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      // Once the daemon has ended the connection, what the peer still sends is dropped, not kept.
      if (this.ending) return;
      this.framer.feed(chunk);
      this.pump();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('close', () => {
      clearTimeout(this.idle);
      this.requestLog.flush();
    });
  }

  /** Answers a request; the answer counts as activity. */
  reply(id: Id, body: Body): void {
    this.lastActivity = performance.now();
    this.send(id, body);
  }

  /** The daemon is stopping: the connection is closed within `graceMs`, whatever it was waiting for. */
  shutdown(graceMs: number): void {
    this.end(graceMs);
    setTimeout(() => this.socket.destroy(), graceMs).unref();
  }

  private send(id: Id, body: Body): void {
    if (this.socket.writable) this.socket.write(line(id, body));
  }

  private pump(): void {
    for (let handled = 0; !this.ending && !this.socket.destroyed; handled++) {
      if (this.socket.writableLength > MAX_UNSENT_BYTES || handled === FRAMES_PER_TURN) {
        this.socket.pause();
        if (handled === FRAMES_PER_TURN) setImmediate(() => this.pump());
        this.held = true;
        return;
      }
      const event = this.framer.next() ?? (this.peerEnded ? this.framer.flush() : undefined);
      if (event === undefined) break;
      this.dispatch(event);
    }
    this.held = false;
    if (!this.ending && !this.socket.destroyed) this.socket.resume();
    this.endIfServed();
  }

  private dispatch(event: FrameEvent): void {
    if (event.kind === 'oversized') {
      this.send(event.id, { error: errorObject(new AgentError('INVALID_REQUEST', `request line over the ${String(this.limits.maxFrameBytes)}-byte limit`)) });
      return;
    }
    this.lastActivity = performance.now();
    if (event.kind === 'invalid-utf8') {
      this.send(event.id, { error: errorObject(new AgentError('PARSE_ERROR', 'the request line is not valid UTF-8')) });
      return;
    }
    this.working++;
    void this.handle(event.text, this).finally(() => {
      this.working--;
      this.endIfServed();
    });
  }

  private endIfServed(): void {
    if (this.peerEnded && this.working === 0 && !this.held) this.end(this.limits.idleTimeoutMs);
  }

  private checkIdle(): void {
    const left = this.lastActivity + this.limits.idleTimeoutMs - performance.now();
    if (this.working > 0 || left > 0) {
      this.idle = setTimeout(() => this.checkIdle(), Math.max(left, 1));
      return;
    }
    this.send(null, { error: errorObject(new AgentError('INVALID_REQUEST', `no complete request for ${String(this.limits.idleTimeoutMs)} ms; closing`)) });
    this.end(CLOSE_GRACE_MS);
  }

  private end(graceMs: number): void {
    if (this.ending) return;
    this.ending = true;
    clearTimeout(this.idle);
    closeAfterGrace(this.socket, graceMs);
  }
}

export class RpcServer {
  private server: Server | undefined;
  private readonly connections_ = new Set<Connection>();
  /** Connections refused (BUSY, UNAUTHORIZED, SHUTTING_DOWN) until they close, within CLOSE_GRACE_MS; they count against no limit. */
  private readonly refused = new Set<Socket>();
  private readonly requestLog: LogBudget;
  private readonly refusalLog: LogBudget;
  private readonly acceptLog: LogBudget;
  private inFlight = 0;
  private readonly abort = new AbortController();
  private closing = false;

  constructor(
    private readonly perform: Perform,
    readonly limits: ServerLimits,
    private readonly log: Logger,
  ) {
    this.requestLog = new LogBudget(log, 'requests', {}, LOGGED_PER_SECOND);
    this.refusalLog = new LogBudget(log, 'refused connections', {}, LOGGED_PER_SECOND);
    this.acceptLog = new LogBudget(log, 'accept failures', {}, LOGGED_PER_SECOND);
  }

  /** Listens on `path` (mode and group applied) or on a socket systemd handed over. */
  async listen(where: { path: string; mode: number; gid?: number } | { fd: number }): Promise<void> {
    // Half-open: a client that shuts down its side after its requests still gets the answers.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server = server;
    // Accept fails when the process is out of descriptors (EMFILE); unheard, that error would stop the daemon.
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (server.listening && this.acceptLog.admit('error')) this.log.error('cannot accept a connection', { error: err.code ?? err.message });
    });
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
    const text = `${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`;
    for (const c of this.connections_) if (c.socket.writable) c.socket.write(text);
  }

  get connections(): number {
    return this.connections_.size;
  }

  /** Stops accepting, waits up to `drainMs` for requests in flight, then aborts them. */
  async close(drainMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
    for (const s of this.refused) s.destroy();
    const deadline = Date.now() + drainMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.abort.abort(new AgentError('SHUTTING_DOWN', 'the daemon is shutting down'));
    for (const c of this.connections_) c.shutdown(200);
    await closed;
    for (const budget of [this.requestLog, this.refusalLog, this.acceptLog]) budget.flush();
  }

  private accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const peer = fd === undefined ? undefined : peerCredentials(fd);
    const refusal = this.refusal(peer);
    if (refusal !== undefined) {
      this.refuse(socket, refusal, peer);
      return;
    }
    const conn = new Connection(socket, peer, this.limits, this.log, this.requestLog, (text, c) => this.handle(text, c));
    this.connections_.add(conn);
    socket.on('close', () => this.connections_.delete(conn));
  }

  private refusal(peer: PeerCredentials | undefined): AgentError | undefined {
    if (this.closing) return new AgentError('SHUTTING_DOWN', 'the daemon is shutting down');
    if (this.connections_.size >= this.limits.maxConnections) return new AgentError('BUSY', `too many connections (limit ${String(this.limits.maxConnections)})`);
    if (this.authorized(peer)) return undefined;
    return new AgentError('UNAUTHORIZED', `uid ${String(peer?.uid)} is not allowed to use this daemon`);
  }

  /**
   * One line, then the descriptor is freed within CLOSE_GRACE_MS, the peer's writes read
   * and dropped meanwhile. At most MAX_LINGERING_REFUSALS wait at once: a new refusal
   * closes the oldest, which has had the longest to read its line.
   */
  private refuse(socket: Socket, err: AgentError, peer: PeerCredentials | undefined): void {
    if (err.code === 'UNAUTHORIZED' && this.refusalLog.admit('warning')) this.log.warning('connection refused', { peer: peerText(peer) });
    if (this.refused.size >= MAX_LINGERING_REFUSALS) {
      const oldest = this.refused.values().next().value;
      if (oldest !== undefined) {
        this.refused.delete(oldest);
        oldest.destroy();
      }
    }
    this.refused.add(socket);
    socket.once('close', () => this.refused.delete(socket));
    socket.resume();
    socket.write(line(null, { error: errorObject(err) }));
    closeAfterGrace(socket, CLOSE_GRACE_MS);
  }

  private authorized(peer: PeerCredentials | undefined): boolean {
    const { allowedUids, allowedGids } = this.limits;
    if (allowedUids.length === 0 && allowedGids.length === 0) return true;
    if (peer === undefined) return false;
    return peer.uid === 0 || allowedUids.includes(peer.uid) || allowedGids.includes(peer.gid);
  }

  private async handle(text: string, conn: Connection): Promise<void> {
    const { peer } = conn;
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch (err) {
      // Never V8's message: it quotes the text around the error, which may be a password.
      const message = err instanceof RangeError ? 'the request line is nested too deeply to parse' : `the request line is not valid JSON${jsonErrorText(text)}`;
      conn.reply(leadingId(text), { error: errorObject(new AgentError('PARSE_ERROR', message)) });
      return;
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      conn.reply(null, { error: errorObject(new AgentError('INVALID_REQUEST', Array.isArray(request) ? 'batch requests are not supported; send one request per line' : 'a request is a JSON object')) });
      return;
    }
    const r = request as Record<string, unknown>;
    const rawId = r['id'];
    const isNotification = !Object.hasOwn(r, 'id');
    const id: Id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    if (r['jsonrpc'] !== '2.0' || typeof r['method'] !== 'string' || (rawId !== undefined && id === null && rawId !== null)) {
      conn.reply(id, { error: errorObject(new AgentError('INVALID_REQUEST', 'expected {"jsonrpc": "2.0", "id": string|number, "method": string, "params": object}')) });
      return;
    }
    const method = r['method'];
    const started = performance.now();
    let action: Action | undefined;
    let outcome = 'ok';
    let failure: unknown;
    try {
      const shape = shapeProblem(r);
      if (shape !== undefined) throw shape.path === 'params' || shape.path.startsWith('params.') ? invalid('INVALID_PARAMS', `invalid parameters for ${method.slice(0, 64)}`, [shape]) : invalid('INVALID_REQUEST', 'invalid request', [shape]);
      if (this.inFlight >= this.limits.maxInFlight) throw new AgentError('BUSY', `too many requests in flight (limit ${String(this.limits.maxInFlight)}); retry`);
      if (this.closing) throw new AgentError('SHUTTING_DOWN', 'the daemon is shutting down');
      action = parseAction(method, r['params']);
      this.inFlight++;
      try {
        const result = await this.perform(action, { id, peer, signal: this.abort.signal });
        if (!isNotification) conn.reply(id, { result });
      } finally {
        this.inFlight--;
      }
    } catch (err) {
      const e = toAgentError(err);
      outcome = e.code;
      if (e.code === 'INTERNAL') failure = err;
      if (!isNotification) conn.reply(id, { error: errorObject(e) });
    }
    // A client's own strings are cut to a line's worth: they are logged for every request.
    const fields = { id: String(id).slice(0, 64), method: method.slice(0, 64), domain: action === undefined ? undefined : domainOf(action), peer: peerText(peer), ms: (performance.now() - started).toFixed(1), outcome };
    const expected = outcome === 'ok' || toAgentErrorExpected(outcome);
    if (!conn.requestLog.admit(expected ? 'info' : 'error')) return;
    if (failure !== undefined) this.log.error('request failed unexpectedly', { id: fields.id, method: fields.method, error: failure instanceof Error ? failure.stack ?? failure.message : String(failure) });
    if (expected) this.log.info('request', fields);
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

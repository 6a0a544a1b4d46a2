/**
 * A small client for the daemon's socket, used by the `configdrive` CLI and the tests:
 * one request at a time or many in parallel on one connection, errors rebuilt as
 * AgentErrors with the daemon's code and problems, notifications delivered to a callback.
 */
import { createConnection, type Socket } from 'node:net';
import { AgentError, ERROR_CODES, type ErrorCode, type Problem } from '../errors.js';
import { LineFramer } from './framing.js';

interface WireError {
  code: number;
  message: string;
  data?: { code?: string; problems?: Problem[]; details?: Record<string, string | number | boolean> };
}

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly listeners: ((method: string, params: unknown) => void)[] = [];
  /** Why the connection is gone, once it is: later calls fail at once with it. */
  private gone: string | undefined;

  private constructor(private readonly socket: Socket) {
    const framer = new LineFramer(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) if (ev.kind === 'frame') this.dispatch(ev.text);
    });
    // A reset (EPIPE, ECONNRESET) is the same news as a close, and must not be thrown.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.gone ??= `the connection to the daemon failed: ${String(err.code ?? err.message)}`;
    });
    socket.on('close', () => {
      this.gone ??= 'the daemon closed the connection';
      for (const p of this.pending.values()) p.reject(new AgentError('IO_ERROR', this.gone));
      this.pending.clear();
    });
  }

  static connect(path: string): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      socket.once('connect', () => resolve(new RpcClient(socket)));
      socket.once('error', (err: NodeJS.ErrnoException) =>
        reject(new AgentError('IO_ERROR', `cannot connect to configdrived at ${path}: ${String(err.code)}${err.code === 'ENOENT' ? ' (is the daemon running? see systemctl status configdrived)' : ''}`)),
      );
    });
  }

  call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    // Written to a closed socket, a request would wait for an answer that never comes.
    if (this.gone !== undefined || this.socket.destroyed) return Promise.reject(new AgentError('IO_ERROR', this.gone ?? 'the connection to the daemon is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  onNotification(listener: (method: string, params: unknown) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.socket.end();
  }

  private dispatch(text: string): void {
    const msg = JSON.parse(text) as { id?: number | null; method?: string; params?: unknown; result?: unknown; error?: WireError };
    if (msg.method !== undefined && msg.id === undefined) {
      for (const l of this.listeners) l(msg.method, msg.params);
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (p === undefined) {
      // An error without an id (connection refused, oversized line): fail everything waiting.
      if (msg.error !== undefined) for (const q of this.pending.values()) q.reject(fromWire(msg.error));
      return;
    }
    this.pending.delete(msg.id as number);
    if (msg.error !== undefined) p.reject(fromWire(msg.error));
    else p.resolve(msg.result);
  }
}

function fromWire(e: WireError): AgentError {
  const code = e.data?.code;
  const known: ErrorCode = code !== undefined && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'INTERNAL';
  return new AgentError(known, e.message, { problems: e.data?.problems ?? [], details: e.data?.details ?? {} });
}

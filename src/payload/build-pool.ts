/**
 * Who builds drives. The daemon's event loop frames requests, checks them and talks to
 * libvirt; turning a document into a checked image (parse, hash passwords, translate,
 * pack, read back: about half a millisecond of CPU, over a millisecond with a password)
 * runs on build threads, so builds use every core and one large build never holds up
 * another client's reply.
 *
 * Threads start when work arrives and stop after `idleMs` without any, so an idle daemon
 * holds no build threads (each costs about 10 MB). A thread that dies (a crash, or a
 * document that exhausts its heap limit) fails only the jobs it held, with INTERNAL; the
 * next job gets a new thread.
 */
import { unlink } from 'node:fs/promises';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { AgentError, type ErrorCode, type Problem } from '../errors.js';
import type { DriveImage } from './build-drive.js';
import { runBuildJob, runBuildJobToFile, type BuildJob, type BuildsDir, type SavedBuild } from './build-job.js';

export interface DriveBuilder {
  /** The image in memory: a domain's drive, which the store then keeps durably. */
  build(job: BuildJob): Promise<DriveImage>;
  /** The image written into `builds` and read back from there (Payload.build for no domain). */
  buildToFile(job: BuildJob, builds: BuildsDir): Promise<SavedBuild>;
  /** Removes old builds, off the event loop where there is a thread; nobody waits for it. */
  discard(paths: readonly string[]): void;
  close(): Promise<void>;
}

function unlinkQuietly(paths: readonly string[]): void {
  // A build already gone (removed by hand) is what was wanted.
  for (const p of paths) void unlink(p).catch(() => undefined);
}

/** Builds on the calling thread: the CLI, tests, and a daemon configured with no build threads. */
export const inlineBuilder: DriveBuilder = {
  build: (job) => runBuildJob(job),
  buildToFile: (job, builds) => runBuildJobToFile(job, builds),
  discard: unlinkQuietly,
  close: async () => undefined,
};

/** Event loop -> build thread: a job, or old builds to remove (no answer). */
export interface BuildRequest {
  readonly id: number;
  readonly job: BuildJob;
  readonly saveTo?: BuildsDir;
}

export interface DiscardRequest {
  readonly discard: readonly string[];
}

export interface WireBuildError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly problems: readonly Problem[];
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

/** Build thread -> event loop. */
export type BuildReply =
  | { readonly id: number; readonly ok: true; readonly image: DriveImage }
  | { readonly id: number; readonly ok: true; readonly saved: SavedBuild }
  | { readonly id: number; readonly ok: false; readonly error: WireBuildError };

export interface BuildPoolOptions {
  /** Most threads at once (at least 1). */
  readonly threads: number;
  /** A thread without work for this long is stopped. */
  readonly idleMs: number;
  /** The thread's script; tests substitute one that misbehaves. */
  readonly script?: URL;
  readonly resourceLimits?: ResourceLimits;
}

/**
 * Jobs a thread holds at once: one running and one waiting in its port, so it never
 * idles between jobs waiting for the event loop, while the rest wait here, where any
 * thread that frees up can take them.
 */
const PER_THREAD = 2;

interface Pending {
  readonly resolve: (reply: BuildReply) => void;
  readonly reject: (err: AgentError) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly jobs: Map<number, Pending>;
  idleTimer?: NodeJS.Timeout;
}

const SCRIPT = new URL('./build-worker.js', import.meta.url);

export class BuildPool implements DriveBuilder {
  private readonly threads: Thread[] = [];
  private readonly queue: { readonly request: BuildRequest; readonly pending: Pending }[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: BuildPoolOptions) {
    if (!Number.isSafeInteger(options.threads) || options.threads < 1) throw new AgentError('INTERNAL', 'a build pool needs at least one thread');
  }

  /** Threads running now. */
  get size(): number {
    return this.threads.length;
  }

  async build(job: BuildJob): Promise<DriveImage> {
    // Parsed settings hold their secrets in Redacted, whose private field a structured
    // clone would empty: a drive without its passwords. They are built where they are.
    if (job.source.kind === 'settings') return runBuildJob(job);
    const reply = await this.submit({ job });
    if (!reply.ok || !('image' in reply)) throw new AgentError('INTERNAL', 'build thread answered without an image');
    return reply.image;
  }

  async buildToFile(job: BuildJob, builds: BuildsDir): Promise<SavedBuild> {
    if (job.source.kind === 'settings') return runBuildJobToFile(job, builds);
    const reply = await this.submit({ job, saveTo: builds });
    if (!reply.ok || !('saved' in reply)) throw new AgentError('INTERNAL', 'build thread answered without a saved build');
    return reply.saved;
  }

  discard(paths: readonly string[]): void {
    if (paths.length === 0) return;
    const thread = this.threads.find((t) => t.jobs.size > 0) ?? this.threads[0];
    if (thread === undefined || this.closed) unlinkQuietly(paths);
    else thread.worker.postMessage({ discard: paths } satisfies DiscardRequest);
  }

  /** Jobs still queued fail with SHUTTING_DOWN; the threads are stopped. */
  async close(): Promise<void> {
    this.closed = true;
    for (const { pending } of this.queue.splice(0)) pending.reject(new AgentError('SHUTTING_DOWN', 'the daemon is stopping; the build was not started'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private submit(fields: Omit<BuildRequest, 'id'>): Promise<BuildReply> {
    if (this.closed) return Promise.reject(new AgentError('SHUTTING_DOWN', 'the daemon is stopping; the build was not started'));
    return new Promise<BuildReply>((resolve, reject) => {
      this.queue.push({ request: { id: this.nextId++, ...fields }, pending: { resolve, reject } });
      this.pump();
    }).then((reply) => {
      if (reply.ok) return reply;
      throw new AgentError(reply.error.code, reply.error.message, { problems: reply.error.problems, details: reply.error.details });
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const thread = this.pick();
      if (thread === undefined) return;
      const { request, pending } = this.queue.shift()!;
      clearTimeout(thread.idleTimer);
      try {
        // Structured cloning recurses: a value it cannot copy (nested too deep, say) fails
        // this job alone, before the thread counts it as its own.
        thread.worker.postMessage(request);
      } catch (err) {
        if (thread.jobs.size === 0) this.armIdle(thread);
        pending.reject(new AgentError('INTERNAL', `the request could not be handed to a build thread: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        continue;
      }
      thread.jobs.set(request.id, pending);
    }
  }

  /** The least busy thread with room; a new one when all are busy and the limit allows. */
  private pick(): Thread | undefined {
    let best: Thread | undefined;
    for (const t of this.threads) if (t.jobs.size < PER_THREAD && (best === undefined || t.jobs.size < best.jobs.size)) best = t;
    if ((best === undefined || best.jobs.size > 0) && this.threads.length < this.options.threads && !this.closed) return this.spawn();
    return best;
  }

  private spawn(): Thread {
    const worker = new Worker(this.options.script ?? SCRIPT, this.options.resourceLimits === undefined ? {} : { resourceLimits: this.options.resourceLimits });
    const thread: Thread = { worker, jobs: new Map() };
    worker.on('message', (reply: BuildReply) => {
      const pending = thread.jobs.get(reply.id);
      if (pending === undefined) return;
      thread.jobs.delete(reply.id);
      pending.resolve(reply);
      if (thread.jobs.size === 0) this.armIdle(thread);
      this.pump();
    });
    worker.on('error', (err) => this.lost(thread, err));
    worker.on('exit', (status) => this.lost(thread, new Error(`exited with status ${String(status)}`)));
    this.threads.push(thread);
    return thread;
  }

  private armIdle(thread: Thread): void {
    thread.idleTimer = setTimeout(() => {
      if (thread.jobs.size > 0) return;
      this.forget(thread);
      void thread.worker.terminate();
    }, this.options.idleMs);
    thread.idleTimer.unref();
  }

  private forget(thread: Thread): boolean {
    const at = this.threads.indexOf(thread);
    if (at < 0) return false;
    this.threads.splice(at, 1);
    clearTimeout(thread.idleTimer);
    return true;
  }

  /** A thread died: its jobs fail, the queue moves on to the others (or a new one). */
  private lost(thread: Thread, err: Error): void {
    if (!this.forget(thread)) return;
    const why = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ran out of memory (the input is too large to build)' : `failed: ${err.message}`;
    for (const pending of thread.jobs.values()) pending.reject(new AgentError('INTERNAL', `the build thread ${why}; the request was not completed`, { cause: err }));
    thread.jobs.clear();
    void thread.worker.terminate();
    this.pump();
  }
}

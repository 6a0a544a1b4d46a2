/**
 * A build thread (see build-pool.ts): takes jobs from the daemon's event loop, runs
 * each to a checked image, answers with the result or the error as plain data. The
 * image's bytes are transferred, not copied. Nothing here logs: the event loop reports.
 */
import { unlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { toAgentError } from '../errors.js';
import { runBuildJob, runBuildJobToFile } from './build-job.js';
import type { BuildReply, BuildRequest, DiscardRequest } from './build-pool.js';

const port = parentPort!;

function exactBuffer(bytes: Uint8Array): ArrayBuffer | undefined {
  // Only a buffer the image owns whole may be handed over; a view into a shared one is copied.
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : undefined;
}

async function serve(request: BuildRequest): Promise<void> {
  let reply: BuildReply;
  const transfer: ArrayBuffer[] = [];
  try {
    if (request.saveTo !== undefined) {
      reply = { id: request.id, ok: true, saved: await runBuildJobToFile(request.job, request.saveTo, { blockingHash: true }) };
    } else {
      const image = await runBuildJob(request.job, { blockingHash: true });
      const owned = exactBuffer(image.bytes);
      if (owned !== undefined) transfer.push(owned);
      reply = { id: request.id, ok: true, image };
    }
  } catch (err) {
    const e = toAgentError(err);
    reply = { id: request.id, ok: false, error: { code: e.code, message: e.message, problems: e.problems, details: e.details } };
  }
  port.postMessage(reply, transfer);
}

function discard(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      unlinkSync(path);
    } catch {
      // already gone (removed by hand): what was wanted
    }
  }
}

port.on('message', (message: BuildRequest | DiscardRequest) => {
  if ('discard' in message) discard(message.discard);
  else void serve(message);
});
